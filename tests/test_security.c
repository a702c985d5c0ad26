#include <criterion/criterion.h>
Test(security, placeholder) { cr_assert(1); }
