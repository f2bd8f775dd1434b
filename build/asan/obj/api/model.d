build/asan/obj/api/model.o: api/model.c api/model.h common/snapshot.h \
 common/addr.h common/pt.h common/proxyproto.h common/route.h \
 common/wbuf.h common/dname.h
api/model.h:
common/snapshot.h:
common/addr.h:
common/pt.h:
common/proxyproto.h:
common/route.h:
common/wbuf.h:
common/dname.h:
