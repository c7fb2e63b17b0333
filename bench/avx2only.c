/* LD_PRELOAD'ed by `python -m bench.embed --avx2-only`: the process sees a CPU
   without AVX-512, VNNI, BF16 or AMX, as an AVX2-only AMD Zen 3 is. CPUID is made to
   fault (arch_prctl ARCH_SET_CPUID, where the kernel offers CPUID faulting: the
   "cpuid_fault" flag) and is answered with those bits cleared, so torch (oneDNN),
   ONNX Runtime (MLAS), OpenVINO and NumPy, which pick their kernels from CPUID at
   start, all pick their AVX2 ones. Nothing else changes: the same binaries, only
   the kernels a Zen 3 would run. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static struct sigaction chained;  /* the SIGSEGV handler the program installed */

static void cpuid_native(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
  __asm__ volatile("cpuid"
                   : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                   : "a"(leaf), "c"(sub));
  syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
}

#define BIT(n) (1u << (n))

static void cpuid_masked(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  cpuid_native(leaf, sub, r);
  if (leaf == 7 && sub == 0) {
    /* AVX512 F DQ IFMA PF ER CD BW VL */
    r[1] &= ~(BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31));
    /* AVX512 VBMI VBMI2, GFNI, AVX512 VNNI BITALG VPOPCNTDQ */
    r[2] &= ~(BIT(1) | BIT(6) | BIT(8) | BIT(11) | BIT(12) | BIT(14));
    /* 4VNNIW 4FMAPS VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8 */
    r[3] &= ~(BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25));
  } else if (leaf == 7 && sub == 1) {
    r[0] &= ~(BIT(4) | BIT(5) | BIT(21) | BIT(23)); /* AVX-VNNI, AVX512-BF16, AMX-FP16, AVX-IFMA */
    r[3] &= ~(BIT(4) | BIT(5) | BIT(10) | BIT(19)); /* AVX-VNNI-INT8, NE-CONVERT, VNNI-INT16, AVX10 */
  } else if (leaf == 0xd && sub == 0) {
    r[0] &= ~(BIT(5) | BIT(6) | BIT(7) | BIT(17) | BIT(18)); /* opmask, ZMM, AMX tiles */
  } else if (leaf == 0x24 || leaf == 0x1d || leaf == 0x1e) {
    r[0] = r[1] = r[2] = r[3] = 0; /* AVX10, AMX palettes */
  }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
  ucontext_t *uc = context;
  greg_t *regs = uc->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
  if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
    uint32_t r[4];
    cpuid_masked((uint32_t)regs[REG_RAX], (uint32_t)regs[REG_RCX], r);
    regs[REG_RAX] = r[0];
    regs[REG_RBX] = r[1];
    regs[REG_RCX] = r[2];
    regs[REG_RDX] = r[3];
    regs[REG_RIP] += 2;
    return;
  }
  if (chained.sa_flags & SA_SIGINFO) {
    chained.sa_sigaction(sig, info, context);
  } else if (chained.sa_handler != SIG_DFL && chained.sa_handler != SIG_IGN) {
    chained.sa_handler(sig);
  } else {
    signal(SIGSEGV, SIG_DFL); /* fault again, now fatal */
  }
}

/* Keep this handler first: a handler the program installs later is called for
   every fault that is not CPUID's. */
int sigaction(int signum, const struct sigaction *act, struct sigaction *old) {
  static int (*real)(int, const struct sigaction *, struct sigaction *);
  if (!real) real = dlsym(RTLD_NEXT, "sigaction");
  if (signum != SIGSEGV) return real(signum, act, old);
  if (old) *old = chained;
  if (act) chained = *act;
  return 0;
}

__attribute__((constructor)) static void start(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_segv;
  action.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  int (*real)(int, const struct sigaction *, struct sigaction *) = dlsym(RTLD_NEXT, "sigaction");
  real(SIGSEGV, &action, NULL);
  syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
}
