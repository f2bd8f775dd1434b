build/asan/obj/db/store.o: db/store.c db/store.h common/pt.h \
 common/embed.h
db/store.h:
common/pt.h:
common/embed.h:
