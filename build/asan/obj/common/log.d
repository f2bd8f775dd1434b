build/asan/obj/common/log.o: common/log.c common/log.h common/pt.h
common/log.h:
common/pt.h:
