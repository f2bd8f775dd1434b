build/asan/obj/api/status.o: api/status.c api/internal.h api/api.h \
 common/pt.h db/store.h api/model.h common/snapshot.h common/addr.h \
 common/proxyproto.h common/route.h common/wbuf.h
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
