build/asan/obj/api/server.o: api/server.c api/internal.h api/api.h \
 common/pt.h db/store.h api/model.h common/snapshot.h common/addr.h \
 common/proxyproto.h common/route.h common/wbuf.h common/embed.h \
 common/log.h
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
common/embed.h:
common/log.h:
