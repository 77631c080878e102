/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/* Generated from the top-level VERSION file by tools/gen-version.sh (make
 * regenerates it when VERSION changes): edit VERSION, not this file.
 * Used by the module (MODULE_VERSION), libshmq (shmq::version()) and the
 * tools; valid C and C++, in the kernel and in user space. */
#ifndef SHMQ_VERSION_H
#define SHMQ_VERSION_H

#define SHMQ_VERSION_STRING	"0.6.0"
#define SHMQ_VERSION_MAJOR	0
#define SHMQ_VERSION_MINOR	6
#define SHMQ_VERSION_PATCH	0
/* (major << 16) | (minor << 8) | patch, for #if comparisons */
#define SHMQ_VERSION_NUMBER	((0 << 16) | (6 << 8) | 0)

#endif /* SHMQ_VERSION_H */
