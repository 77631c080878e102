# Installing shmq (included by the top-level Makefile; see docs/install.md).
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [KDIR=... | KVER=...]
#   make uninstall            same PREFIX and DESTDIR: removes what the
#                             manifest of make install lists
#   make dkms-install         sources to /usr/src/shmq-$(VERSION), dkms add,
#                             build and install for KVER
#   make dkms-uninstall       dkms remove --all, and the sources
#   make dkms-check           dkms build in a private tree for every Debian
#                             header tree installed (DKMS_KVERS), nothing
#                             under /var/lib/dkms or /usr/src is touched
#
# Knobs: PREFIX BINDIR LIBDIR INCLUDEDIR DATADIR MANDIR DOCDIR PKGCONFIGDIR
# CMAKEDIR UDEVRULESDIR MODULEDIR DESTDIR, INSTALL_MODULE=0 (no shmq.ko).
# The module goes to /lib/modules/$(KVER)/extra whatever PREFIX is (that is
# where modprobe looks), the udev rules to /usr/lib/udev/rules.d (udev reads
# no $(PREFIX)/lib/udev for PREFIX=/usr/local).

PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
DATADIR      ?= $(PREFIX)/share
MANDIR       ?= $(DATADIR)/man
DOCDIR       ?= $(DATADIR)/doc/shmq
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR     ?= $(LIBDIR)/cmake/shmq
UDEVRULESDIR ?= /usr/lib/udev/rules.d
MODULEDIR    ?= /lib/modules/$(KVER)/extra
SHMQ_MANIFEST ?= $(DATADIR)/shmq/install-manifest
INSTALL_MODULE ?= 1
# kernels for make dkms-check: every Debian header tree with a build link
DKMS_KVERS   ?= $(notdir $(patsubst %/build,%,$(wildcard /lib/modules/*/build)))

SHMQ_INSTALL_ENV = VERSION="$(SHMQ_VERSION)" SOVERSION="$(LIBSHMQ_SOVERSION)" \
	BUILD="$(BUILD)" DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" BINDIR="$(BINDIR)" \
	LIBDIR="$(LIBDIR)" INCLUDEDIR="$(INCLUDEDIR)" MANDIR="$(MANDIR)" DOCDIR="$(DOCDIR)" \
	PKGCONFIGDIR="$(PKGCONFIGDIR)" CMAKEDIR="$(CMAKEDIR)" UDEVRULESDIR="$(UDEVRULESDIR)" \
	MODULEDIR="$(MODULEDIR)" MANIFEST="$(SHMQ_MANIFEST)" KVER="$(KVER)" \
	DKMS_KVERS="$(DKMS_KVERS)"
SHMQ_INSTALL_SCRIPT := $(CURDIR)/tools/shmq-install.sh
SHMQ_INSTALL_KO := $(BUILD)/module/$(KVER)/shmq.ko

.PHONY: install uninstall install-module-build dkms-install dkms-uninstall dkms-check

# Prefixes must be absolute: they end up in shmq.pc and the manifest.
shmq_check_abs = $(foreach v,PREFIX BINDIR LIBDIR INCLUDEDIR MANDIR DOCDIR PKGCONFIGDIR CMAKEDIR UDEVRULESDIR,\
	$(if $(filter /%,$($(v))),,$(error $(v)=$($(v)) must be an absolute path)))

install-module-build:
ifeq ($(INSTALL_MODULE),1)
	@if [ -z "$(KDIR)" ] || [ ! -f "$(KDIR)/Makefile" ]; then \
		echo "install: no kernel build tree (KDIR='$(KDIR)'): install linux-headers-<version>," >&2; \
		echo "         pass KDIR=/usr/src/linux-headers-<version> or KVER=<version>, or INSTALL_MODULE=0" >&2; \
		exit 1; fi
	@$(SHMQ_MODULE_SCRIPT) "$(KDIR)" "$(BUILD)/module/$(KVER)" >/dev/null || \
		{ echo "install: building shmq.ko for KDIR=$(KDIR) failed" >&2; exit 1; }
endif

install: lib tools bench-build install-module-build
	$(shmq_check_abs)
	@$(SHMQ_INSTALL_ENV) $(if $(filter 1,$(INSTALL_MODULE)),MODULE="$(SHMQ_INSTALL_KO)") \
		bash $(SHMQ_INSTALL_SCRIPT) install

uninstall:
	$(shmq_check_abs)
	@$(SHMQ_INSTALL_ENV) bash $(SHMQ_INSTALL_SCRIPT) uninstall

dkms-install:
	@$(SHMQ_INSTALL_ENV) bash $(SHMQ_INSTALL_SCRIPT) dkms-install

dkms-uninstall:
	@$(SHMQ_INSTALL_ENV) bash $(SHMQ_INSTALL_SCRIPT) dkms-uninstall

dkms-check:
	@$(SHMQ_INSTALL_ENV) bash $(SHMQ_INSTALL_SCRIPT) dkms-check
