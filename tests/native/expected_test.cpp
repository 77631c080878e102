// SPDX-License-Identifier: MIT
// shmq::expected (include/shmq/expected.hpp) behaves as C++23 std::expected.
// The same tests are built twice: against shmq::expected (in
// shmq-native-tests) and, with -std=c++23 -DSHMQ_EXPECTED_TEST_STD, against
// libstdc++'s std::expected (shmq-expected-std-tests, tests/native/native.mk),
// so that every expectation here is one std::expected meets too.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef SHMQ_EXPECTED_TEST_STD
#include <expected>
namespace ex = std;
// The monadic operations and error_or came with __cpp_lib_expected 202211L
// (libstdc++ 13); older ones skip those tests.
#define SHMQ_TEST_MONADIC (__cpp_lib_expected >= 202211L)
#else
#include <shmq/shmq.hpp>
namespace ex = shmq;
#define SHMQ_TEST_MONADIC 1
#endif

namespace {

// Counts its constructions, so that a test can prove a T was never built.
struct Counted {
	static inline int built = 0;
	int v = 7;
	Counted() { ++built; }
	explicit Counted(int x) : v(x) { ++built; }
	Counted(const Counted &o) : v(o.v) { ++built; }
	Counted(Counted &&o) noexcept : v(o.v) { ++built; }
	Counted &operator=(const Counted &) = default;
	Counted &operator=(Counted &&) = default;
	~Counted() = default;
};

struct NoDefault {
	explicit NoDefault(int x) : v(x) {}
	int v;
};

using E = ex::expected<int, std::string>;

} // namespace

TEST(Expected, ValueOnErrorThrowsBadExpectedAccessCarryingTheError)
{
	E e = ex::unexpected(std::string("broken"));
	ASSERT_FALSE(e.has_value());
	try {
		(void)e.value();
		FAIL() << "value() returned on an error";
	} catch (const ex::bad_expected_access<std::string> &b) {
		EXPECT_EQ(b.error(), "broken");
	}
	// The base class catches it too, as with std.
	EXPECT_THROW((void)std::as_const(e).value(), ex::bad_expected_access<void>);
	EXPECT_THROW((void)std::move(e).value(), std::exception);
}

TEST(Expected, ErrorNeverConstructsADefaultT)
{
	Counted::built = 0;
	ex::expected<Counted, int> e(ex::unexpect, 5);
	EXPECT_EQ(Counted::built, 0);
	EXPECT_FALSE(e);
	EXPECT_EQ(e.error(), 5);
	ex::expected<Counted, int> copy = e;
	EXPECT_EQ(copy.error(), 5);
	EXPECT_EQ(Counted::built, 0);
	// A T without a default constructor is fine: nothing is built for an error.
	ex::expected<NoDefault, int> nd = ex::unexpected(3);
	EXPECT_EQ(nd.error(), 3);
	ex::expected<NoDefault, int> ndv(std::in_place, 9);
	EXPECT_EQ(ndv->v, 9);
	EXPECT_EQ(nd.value_or(NoDefault(4)).v, 4);
}

TEST(Expected, DefaultConstructedHoldsAValueInitialisedT)
{
	ex::expected<int, std::string> e;
	ASSERT_TRUE(e.has_value());
	EXPECT_EQ(*e, 0);
	static_assert(!std::is_default_constructible_v<ex::expected<NoDefault, int>>);
}

TEST(Expected, ConstructorsInPlaceUnexpectAndConverting)
{
	ex::expected<std::vector<int>, std::string> v(std::in_place, {1, 2, 3});
	EXPECT_EQ(v->size(), 3u);
	ex::expected<std::vector<int>, std::string> u(ex::unexpect, 3, 'x');
	EXPECT_EQ(u.error(), "xxx");
	// unexpected<G> converts when E is constructible from G.
	ex::expected<int, std::string> g = ex::unexpected("from a char pointer");
	EXPECT_EQ(g.error(), "from a char pointer");
	const ex::unexpected<const char *> lvalue("lvalue");
	ex::expected<int, std::string> gl = lvalue;
	EXPECT_EQ(gl.error(), "lvalue");
	// expected<U, G> converts to expected<T, E>.
	ex::expected<short, const char *> small = short{12};
	ex::expected<long, std::string> big = small;
	EXPECT_EQ(*big, 12);
	ex::expected<short, const char *> small_err = ex::unexpected("e");
	ex::expected<long, std::string> big_err = std::move(small_err);
	EXPECT_EQ(big_err.error(), "e");
	// explicit(...) as in std: no implicit conversion from an explicit-only T.
	static_assert(!std::is_convertible_v<int, ex::expected<NoDefault, int>>);
	static_assert(std::is_constructible_v<ex::expected<NoDefault, int>, int>);
	// unexpected in place.
	ex::unexpected<std::string> ip(std::in_place, 2, 'y');
	EXPECT_EQ(ip.error(), "yy");
}

TEST(Expected, ObserversDoNotCheckAndAreNoexcept)
{
	E e = 4;
	static_assert(noexcept(*e) && noexcept(e.operator->()) && noexcept(e.has_value()) &&
		      noexcept(static_cast<bool>(e)) && noexcept(e.error()));
	EXPECT_EQ(*e, 4);
	*e = 5;
	EXPECT_EQ(e.value(), 5);
	ex::expected<std::string, int> s = std::string("abc");
	EXPECT_EQ(s->size(), 3u);
	std::string moved = *std::move(s);
	EXPECT_EQ(moved, "abc");
	static_assert(std::is_same_v<decltype(*std::move(s)), std::string &&>);
	static_assert(std::is_same_v<decltype(std::move(s).error()), int &&>);
}

TEST(Expected, ValueOrAndErrorOr)
{
	E v = 3, err = ex::unexpected(std::string("no"));
	EXPECT_EQ(v.value_or(9), 3);
	EXPECT_EQ(err.value_or(9), 9);
#if SHMQ_TEST_MONADIC
	EXPECT_EQ(v.error_or("fine"), "fine");
	EXPECT_EQ(err.error_or("fine"), "no");
#endif
	ex::expected<std::unique_ptr<int>, int> up = std::make_unique<int>(8);
	auto p = std::move(up).value_or(nullptr);
	EXPECT_EQ(*p, 8);
}

TEST(Expected, AssignmentSwitchesBetweenValueAndError)
{
	ex::expected<std::string, std::string> e = std::string("value");
	e = ex::unexpected(std::string("error"));
	ASSERT_FALSE(e);
	EXPECT_EQ(e.error(), "error");
	e = std::string("again");
	ASSERT_TRUE(e);
	EXPECT_EQ(*e, "again");
	ex::expected<std::string, std::string> other = ex::unexpected(std::string("o"));
	e = other;
	EXPECT_EQ(e.error(), "o");
	e = ex::expected<std::string, std::string>("v2");
	EXPECT_EQ(*e, "v2");
	// emplace needs a nothrow constructor, as in std.
	ex::expected<int, std::string> i = ex::unexpected(std::string("x"));
	EXPECT_EQ(i.emplace(3), 3);
	EXPECT_TRUE(i);
	i = ex::unexpected(std::string("y"));
	EXPECT_EQ(i.error(), "y");
}

TEST(Expected, SwapMixesValueAndError)
{
	ex::expected<std::string, int> a = std::string("a"), b = ex::unexpected(2);
	swap(a, b);
	ASSERT_FALSE(a);
	EXPECT_EQ(a.error(), 2);
	ASSERT_TRUE(b);
	EXPECT_EQ(*b, "a");
	a.swap(b);
	EXPECT_EQ(*a, "a");
	EXPECT_EQ(b.error(), 2);
}

#if SHMQ_TEST_MONADIC
TEST(Expected, MonadicOperationsOnValueAndError)
{
	const E v = 20, err = ex::unexpected(std::string("bad"));
	auto half = [](int x) -> E {
		if (x % 2)
			return ex::unexpected(std::string("odd"));
		return x / 2;
	};
	EXPECT_EQ(*v.and_then(half), 10);
	EXPECT_EQ(v.and_then(half).and_then(half).and_then(half).error(), "odd");
	EXPECT_EQ(err.and_then(half).error(), "bad");

	auto str = v.transform([](int x) { return std::to_string(x); });
	static_assert(std::is_same_v<decltype(str), ex::expected<std::string, std::string>>);
	EXPECT_EQ(*str, "20");
	EXPECT_EQ(err.transform([](int x) { return x + 1; }).error(), "bad");
	int seen = 0;
	auto vo = v.transform([&](int x) { seen = x; });
	static_assert(std::is_same_v<decltype(vo), ex::expected<void, std::string>>);
	EXPECT_TRUE(vo.has_value());
	EXPECT_EQ(seen, 20);

	auto recover = [](const std::string &s) -> E { return static_cast<int>(s.size()); };
	EXPECT_EQ(*err.or_else(recover), 3);
	EXPECT_EQ(*v.or_else(recover), 20);

	auto code = err.transform_error([](const std::string &s) { return s.size(); });
	static_assert(std::is_same_v<decltype(code), ex::expected<int, size_t>>);
	EXPECT_EQ(code.error(), 3u);
	EXPECT_EQ(*v.transform_error([](const std::string &) { return 0; }), 20);

	// Rvalue overloads move the value into the function.
	ex::expected<std::unique_ptr<int>, int> up = std::make_unique<int>(5);
	auto n = std::move(up).transform([](std::unique_ptr<int> p) { return *p * 2; });
	EXPECT_EQ(*n, 10);
}

TEST(Expected, TransformBuildsTheResultInPlace)
{
	struct Pinned {
		explicit Pinned(int x) : v(x) {}
		Pinned(const Pinned &) = delete;
		Pinned(Pinned &&) = delete;
		int v;
	};
	E v = 6;
	auto p = v.transform([](int x) { return Pinned(x); });
	EXPECT_EQ(p->v, 6);
}

#endif

TEST(Expected, VoidSpecialisation)
{
	using V = ex::expected<void, std::string>;
	V ok;
	EXPECT_TRUE(ok.has_value());
	EXPECT_NO_THROW(ok.value());
	V in(std::in_place);
	EXPECT_TRUE(in);
	V bad = ex::unexpected(std::string("nope"));
	EXPECT_FALSE(bad);
	EXPECT_EQ(bad.error(), "nope");
	try {
		bad.value();
		FAIL() << "value() returned on an error";
	} catch (const ex::bad_expected_access<std::string> &b) {
		EXPECT_EQ(b.error(), "nope");
	}
#if SHMQ_TEST_MONADIC
	EXPECT_EQ(bad.error_or("x"), "nope");
	EXPECT_EQ(ok.error_or("x"), "x");

	int calls = 0;
	auto next = ok.and_then([&]() -> V {
		++calls;
		return {};
	});
	EXPECT_TRUE(next);
	EXPECT_EQ(bad.and_then([&]() -> V {
			     ++calls;
			     return {};
		     }).error(),
		  "nope");
	EXPECT_EQ(calls, 1);
	auto n = ok.transform([] { return 42; });
	static_assert(std::is_same_v<decltype(n), ex::expected<int, std::string>>);
	EXPECT_EQ(*n, 42);
	EXPECT_TRUE(bad.or_else([](const std::string &) -> V { return {}; }));
	EXPECT_EQ(bad.transform_error([](const std::string &s) { return s.size(); }).error(), 4u);
#endif

	V v2 = bad;
	v2 = V();
	EXPECT_TRUE(v2);
	v2 = ex::unexpected(std::string("again"));
	EXPECT_EQ(v2.error(), "again");
	v2.emplace();
	EXPECT_TRUE(v2);
	swap(v2, bad);
	EXPECT_FALSE(v2);
	EXPECT_TRUE(bad);

	EXPECT_TRUE(ok == V());
	EXPECT_FALSE(ok == v2);
	EXPECT_TRUE(v2 == ex::unexpected(std::string("nope")));
	// Converting from expected<void, G>.
	ex::expected<void, const char *> g = ex::unexpected("c");
	V from_g = g;
	EXPECT_EQ(from_g.error(), "c");
}

TEST(Expected, Equality)
{
	E a = 1, b = 1, c = 2, e1 = ex::unexpected(std::string("e")),
	  e2 = ex::unexpected(std::string("e"));
	EXPECT_TRUE(a == b);
	EXPECT_FALSE(a == c);
	EXPECT_FALSE(a == e1);
	EXPECT_TRUE(e1 == e2);
	EXPECT_TRUE(a == 1);
	EXPECT_TRUE(a != 2);
	EXPECT_TRUE(e1 == ex::unexpected(std::string("e")));
	EXPECT_FALSE(a == ex::unexpected(std::string("e")));
	ex::expected<long, std::string> l = 1;
	EXPECT_TRUE(a == l);
	EXPECT_TRUE(ex::unexpected(1) == ex::unexpected(1L));
}

TEST(Expected, TrivialWhenTAndEAre)
{
	using T = ex::expected<int, long>;
	static_assert(std::is_trivially_copy_constructible_v<T>);
	static_assert(std::is_trivially_move_constructible_v<T>);
	static_assert(std::is_trivially_destructible_v<T>);
	static_assert(std::is_trivially_destructible_v<ex::expected<void, int>>);
	static_assert(!std::is_trivially_destructible_v<ex::expected<std::string, int>>);
	// Move-only values make a move-only expected.
	using U = ex::expected<std::unique_ptr<int>, int>;
	static_assert(!std::is_copy_constructible_v<U> && std::is_move_constructible_v<U>);
	static_assert(std::is_nothrow_move_constructible_v<U>);
	static_assert(std::is_same_v<E::rebind<char>, ex::expected<char, std::string>>);
	static_assert(std::is_same_v<E::unexpected_type, ex::unexpected<std::string>>);
}

#ifndef SHMQ_EXPECTED_TEST_STD
// What libshmq builds on it.
TEST(Expected, ResultIsExpectedOfError)
{
	static_assert(std::is_same_v<shmq::Result<int>, shmq::expected<int, shmq::Error>>);
	static_assert(std::is_same_v<shmq::Result<void>, shmq::expected<void, shmq::Error>>);
	constexpr shmq::unexpected<shmq::Error> kErr(shmq::Error(EINVAL, "invalid"));
	shmq::Result<size_t> r = kErr;
	ASSERT_FALSE(r);
	EXPECT_EQ(r.error().code(), EINVAL);
	EXPECT_TRUE(r.error() == shmq::Error(EINVAL, "invalid"));
	EXPECT_FALSE(r.error() == shmq::Error(EINVAL, "other"));
	EXPECT_FALSE(r.error() == shmq::Error(EIO, "invalid"));
	try {
		(void)r.value();
		FAIL();
	} catch (const shmq::bad_expected_access<shmq::Error> &b) {
		EXPECT_EQ(b.error().code(), EINVAL);
	}
}
#endif
