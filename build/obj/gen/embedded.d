build/obj/gen/embedded.o: build/gen/embedded.c common/embed.h
common/embed.h:
