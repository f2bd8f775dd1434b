build/asan/obj/daemon/publish.o: daemon/publish.c daemon/publish.h \
 common/snapshot.h common/addr.h common/pt.h common/proxyproto.h \
 common/route.h common/wbuf.h db/store.h api/model.h common/ipc.h \
 common/log.h
daemon/publish.h:
common/snapshot.h:
common/addr.h:
common/pt.h:
common/proxyproto.h:
common/route.h:
common/wbuf.h:
db/store.h:
api/model.h:
common/ipc.h:
common/log.h:
