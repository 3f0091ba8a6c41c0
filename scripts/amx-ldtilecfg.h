/* Forced into every C++ file of the llama.cpp build when AMX is on (scripts/llama-cmake-args.sh).
 *
 * GCC 12's _tile_loadconfig() tells the compiler it reads 8 bytes of the 64-byte tile
 * configuration ("m" (*(const void **)config)), so the compiler drops the stores of the
 * row and column sizes that ggml writes just before it. The tiles are then unconfigured
 * and the first tile instruction raises SIGILL (seen here in ggml's AMX matmul, the crash
 * that kept AMX out of the build until now). This macro gives the instruction its whole
 * 64-byte operand.
 */
#if defined(__x86_64__) && defined(__AMX_TILE__)
#include <immintrin.h>
#undef _tile_loadconfig
#define _tile_loadconfig(config) __asm__ volatile("ldtilecfg %0" ::"m"(*(const unsigned char(*)[64])(config)))
#endif
