build/asan/obj/common/clienthello.o: common/clienthello.c \
 common/clienthello.h common/pt.h common/cursor.h
common/clienthello.h:
common/pt.h:
common/cursor.h:
