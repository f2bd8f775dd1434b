build/asan/obj/gen/embedded.o: build/asan/gen/embedded.c common/embed.h
common/embed.h:
