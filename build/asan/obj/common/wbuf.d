build/asan/obj/common/wbuf.o: common/wbuf.c common/wbuf.h common/pt.h
common/wbuf.h:
common/pt.h:
