# The build benchmark's Makefile: Lua 5.4's 32 C files (the copy shipped by
# the lua-src crate) plus main.c, compiled with the root's gcc into liblua.a
# and a small program that is linked and run as a check.
CC = gcc
CFLAGS = -O2 -Wall -std=gnu99 -DLUA_COMPAT_5_3 -DLUA_USE_LINUX
AR = ar rcs

LIB_O = lapi.o lcode.o lctype.o ldebug.o ldo.o ldump.o lfunc.o lgc.o \
	llex.o lmem.o lobject.o lopcodes.o lparser.o lstate.o lstring.o \
	ltable.o ltm.o lundump.o lvm.o lzio.o \
	lauxlib.o lbaselib.o lcorolib.o ldblib.o liolib.o lmathlib.o \
	loadlib.o loslib.o lstrlib.o ltablib.o lutf8lib.o linit.o

all: luatest
	./luatest

# The quick mode's build: two translation units only.
quick: lapi.o main.o

liblua.a: $(LIB_O)
	$(AR) $@ $(LIB_O)

luatest: main.o liblua.a
	$(CC) -o $@ main.o liblua.a -lm -ldl

%.o: %.c
	$(CC) $(CFLAGS) -c -o $@ $<

clean:
	rm -f *.o liblua.a luatest

.PHONY: all quick clean
