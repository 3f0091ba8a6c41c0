#!/bin/sh
# CMAKE_ARGS for building llama-cpp-python on this machine's CPU.
#
# The build names the instruction sets it may use, from what /proc/cpuinfo reports. AVX-512
# with VNNI roughly doubles prompt processing over the portable AVX2 baseline, and ggml's AMX
# matmul (Intel Sapphire Rapids and later) adds about 40 % more (README, benchmarks/llm_speed.py).
# AMX needs scripts/amx-ldtilecfg.h forced into the build: GCC 12 miscompiles ggml's tile
# configuration without it (SIGILL at the first tile instruction). If the kernel refuses a
# process the AMX registers, ggml says so and uses the AVX-512 code instead.
# QA_BOT_PORTABLE=1 forces the portable build (for a wheel that must run on another CPU).
args="-DGGML_NATIVE=OFF"
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { case " $flags " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if [ -z "$QA_BOT_PORTABLE" ] && [ -n "$flags" ]; then
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI; do
        has "${pair%%:*}" && args="$args -DGGML_${pair#*:}=ON"
    done
    if has avx512f && has avx512bw && has avx512dq && has avx512vl && has avx512cd; then
        args="$args -DGGML_AVX512=ON"
        for pair in avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
            has "${pair%%:*}" && args="$args -DGGML_${pair#*:}=ON"
        done
        if has amx_tile && has amx_int8 && has avx512_vnni; then
            here=$(cd "$(dirname "$0")" && pwd)
            case "$here" in
            *[[:space:]]*) ;; # CMAKE_ARGS is split on spaces: no AMX from a folder whose path has one
            *) args="$args -DGGML_AMX_TILE=ON -DGGML_AMX_INT8=ON -DCMAKE_CXX_FLAGS=-include$here/amx-ldtilecfg.h" ;;
            esac
        fi
    fi
fi
echo "$args"
