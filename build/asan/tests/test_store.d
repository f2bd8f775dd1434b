build/asan/tests/test_store: tests/unit/test_store.c db/store.h \
 common/pt.h
db/store.h:
common/pt.h:
