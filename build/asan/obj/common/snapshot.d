build/asan/obj/common/snapshot.o: common/snapshot.c common/snapshot.h \
 common/addr.h common/pt.h common/proxyproto.h common/route.h \
 common/wbuf.h common/cursor.h common/dname.h
common/snapshot.h:
common/addr.h:
common/pt.h:
common/proxyproto.h:
common/route.h:
common/wbuf.h:
common/cursor.h:
common/dname.h:
