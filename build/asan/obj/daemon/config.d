build/asan/obj/daemon/config.o: daemon/config.c daemon/config.h \
 common/addr.h common/pt.h
daemon/config.h:
common/addr.h:
common/pt.h:
