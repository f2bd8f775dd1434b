build/asan/obj/common/addr.o: common/addr.c common/addr.h common/pt.h \
 common/dname.h
common/addr.h:
common/pt.h:
common/dname.h:
