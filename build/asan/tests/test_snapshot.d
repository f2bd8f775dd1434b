build/asan/tests/test_snapshot: tests/unit/test_snapshot.c common/dname.h \
 common/pt.h common/snapshot.h common/addr.h common/proxyproto.h \
 common/route.h common/wbuf.h tests/unit/guard.h
common/dname.h:
common/pt.h:
common/snapshot.h:
common/addr.h:
common/proxyproto.h:
common/route.h:
common/wbuf.h:
tests/unit/guard.h:
