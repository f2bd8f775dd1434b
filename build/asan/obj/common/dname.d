build/asan/obj/common/dname.o: common/dname.c common/dname.h common/pt.h
common/dname.h:
common/pt.h:
