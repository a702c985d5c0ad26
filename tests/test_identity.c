#include <criterion/criterion.h>
Test(identity, placeholder) { cr_assert(1); }
