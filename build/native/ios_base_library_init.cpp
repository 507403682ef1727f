// Supplies std::ios_base_library_init(), which GCC 13's libstdc++ exports (GLIBCXX_3.4.32) and
// GCC 12's lacks. GCC 13 emits calls to it so that the standard streams are initialised before
// use; constructing a static ios_base::Init does exactly that on older runtimes.
#include <ios>

namespace std {
void ios_base_library_init() {
    static ios_base::Init init;
}
}  // namespace std
