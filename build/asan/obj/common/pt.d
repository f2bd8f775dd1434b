build/asan/obj/common/pt.o: common/pt.c common/pt.h
common/pt.h:
