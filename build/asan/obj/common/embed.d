build/asan/obj/common/embed.o: common/embed.c common/embed.h
common/embed.h:
