build/asan/obj/worker/worker.o: worker/worker.c worker/worker.h \
 common/ipc.h common/pt.h common/wbuf.h common/log.h common/snapshot.h \
 common/addr.h common/proxyproto.h common/route.h common/cursor.h
worker/worker.h:
common/ipc.h:
common/pt.h:
common/wbuf.h:
common/log.h:
common/snapshot.h:
common/addr.h:
common/proxyproto.h:
common/route.h:
common/cursor.h:
