build/asan/obj/worker/http80.o: worker/http80.c worker/worker.h \
 common/ipc.h common/pt.h common/wbuf.h common/log.h common/snapshot.h \
 common/addr.h common/proxyproto.h common/route.h
worker/worker.h:
common/ipc.h:
common/pt.h:
common/wbuf.h:
common/log.h:
common/snapshot.h:
common/addr.h:
common/proxyproto.h:
common/route.h:
