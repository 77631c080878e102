# An outside project using the INSTALLED shmq through pkg-config (run.sh sets
# PKG_CONFIG_LIBDIR and PKG_CONFIG_SYSROOT_DIR to a make install DESTDIR copy).
#   make -f pkgconfig.mk O=OUTDIR
PKG_CONFIG ?= pkg-config
O          ?= .
SRC        := $(dir $(lastword $(MAKEFILE_LIST)))
SHMQ_CFLAGS := $(shell $(PKG_CONFIG) --cflags shmq)
SHMQ_LIBS   := $(shell $(PKG_CONFIG) --libs shmq)
CXXFLAGS   := -std=c++20 -O2 -Wall -Wextra -Werror

all: $(O)/app-pc-shared $(O)/app-pc-static

$(O)/app-pc-shared: $(SRC)app.cpp
	$(CXX) $(CXXFLAGS) $(SHMQ_CFLAGS) -o $@ $< $(SHMQ_LIBS)

# libshmq.a from the same -L, the C++ runtime stays shared
$(O)/app-pc-static: $(SRC)app.cpp
	$(CXX) $(CXXFLAGS) $(SHMQ_CFLAGS) -o $@ $< -Wl,-Bstatic $(SHMQ_LIBS) -Wl,-Bdynamic
