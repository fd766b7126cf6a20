// OpenBLAS's CBLAS interface, as Debian's libopenblas-dev installs it.
#include <cblas-openblas.h>
