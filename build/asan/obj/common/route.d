build/asan/obj/common/route.o: common/route.c common/route.h common/pt.h \
 common/dname.h
common/route.h:
common/pt.h:
common/dname.h:
