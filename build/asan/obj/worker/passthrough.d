build/asan/obj/worker/passthrough.o: worker/passthrough.c worker/worker.h \
 common/ipc.h common/pt.h common/wbuf.h common/log.h common/snapshot.h \
 common/addr.h common/proxyproto.h common/route.h common/clienthello.h
worker/worker.h:
common/ipc.h:
common/pt.h:
common/wbuf.h:
common/log.h:
common/snapshot.h:
common/addr.h:
common/proxyproto.h:
common/route.h:
common/clienthello.h:
