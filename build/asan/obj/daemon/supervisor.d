build/asan/obj/daemon/supervisor.o: daemon/supervisor.c \
 daemon/supervisor.h common/pt.h common/wbuf.h common/cursor.h \
 common/ipc.h common/log.h
daemon/supervisor.h:
common/pt.h:
common/wbuf.h:
common/cursor.h:
common/ipc.h:
common/log.h:
