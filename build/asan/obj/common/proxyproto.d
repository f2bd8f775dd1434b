build/asan/obj/common/proxyproto.o: common/proxyproto.c \
 common/proxyproto.h common/pt.h common/cursor.h
common/proxyproto.h:
common/pt.h:
common/cursor.h:
