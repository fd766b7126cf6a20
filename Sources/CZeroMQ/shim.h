#ifndef CHIMERA_CZEROMQ_SHIM_H
#define CHIMERA_CZEROMQ_SHIM_H
// Debian's libzmq3-dev puts zmq.h and libzmq.so on default paths, so no pkg-config is needed.
#include <zmq.h>
#endif
