build/asan/obj/common/ipc.o: common/ipc.c common/ipc.h common/pt.h \
 common/wbuf.h common/cursor.h
common/ipc.h:
common/pt.h:
common/wbuf.h:
common/cursor.h:
