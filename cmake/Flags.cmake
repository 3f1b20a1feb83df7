# Compiler flags shared by every target: warnings, hardening, sanitizers.
# lia_flags carries them; every first-party target links it. Generated protobuf code links
# lia_flags_relaxed instead (same hardening and sanitizers, fewer warnings).

add_library(lia_flags_relaxed INTERFACE)
add_library(lia_flags INTERFACE)
target_link_libraries(lia_flags INTERFACE lia_flags_relaxed)

target_compile_options(lia_flags_relaxed INTERFACE
  -fstack-protector-strong -fstack-clash-protection -fPIE
  $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  target_compile_options(lia_flags_relaxed INTERFACE -fcf-protection)
endif()
target_link_options(lia_flags_relaxed INTERFACE -pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)

target_compile_options(lia_flags INTERFACE
  -Wall -Wextra -Wshadow -Wformat=2 -Wformat-security -Wstrict-prototypes
  -Wmissing-prototypes -Wold-style-definition -Wvla -Wimplicit-fallthrough
  -Wpointer-arith -Wundef -Wno-unused-parameter)
if(LIA_WERROR)
  target_compile_options(lia_flags INTERFACE -Werror)
endif()

if(LIA_SANITIZE)
  target_compile_options(lia_flags_relaxed INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(lia_flags_relaxed INTERFACE -fsanitize=address,undefined)
endif()

if(LIA_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "LIA_FUZZ needs clang (use the 'fuzz' preset)")
  endif()
  target_compile_options(lia_flags_relaxed INTERFACE
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
  target_link_options(lia_flags_relaxed INTERFACE -fsanitize=address,undefined)
endif()
