build/asan/obj/daemon/main.o: daemon/main.c api/api.h common/pt.h \
 db/store.h common/addr.h common/log.h daemon/config.h daemon/publish.h \
 common/snapshot.h common/proxyproto.h common/route.h common/wbuf.h \
 daemon/supervisor.h worker/worker.h common/ipc.h
api/api.h:
common/pt.h:
db/store.h:
common/addr.h:
common/log.h:
daemon/config.h:
daemon/publish.h:
common/snapshot.h:
common/proxyproto.h:
common/route.h:
common/wbuf.h:
daemon/supervisor.h:
worker/worker.h:
common/ipc.h:
