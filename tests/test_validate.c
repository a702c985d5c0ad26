#include <criterion/criterion.h>
Test(validate, placeholder) { cr_assert(1); }
