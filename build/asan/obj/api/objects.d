build/asan/obj/api/objects.o: api/objects.c api/internal.h api/api.h \
 common/pt.h db/store.h api/model.h common/snapshot.h common/addr.h \
 common/proxyproto.h common/route.h common/wbuf.h common/dname.h
api/internal.h:
api/api.h:
common/pt.h:
db/store.h:
api/model.h:
common/snapshot.h:
common/addr.h:
common/proxyproto.h:
common/route.h:
common/wbuf.h:
common/dname.h:
