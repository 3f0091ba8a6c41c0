#!/bin/sh
# CMAKE_ARGS for building llama-cpp-python on this machine's CPU.
#
# -march=native (GGML_NATIVE=ON) also emits AMX code, which these VMs refuse with SIGILL, so
# the build names the instruction sets it may use, from what /proc/cpuinfo reports. AVX-512
# with VNNI roughly doubles prompt processing over the portable AVX2 baseline (README).
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
    fi
fi
echo "$args"
