// SPDX-License-Identifier: MIT
// shmq::expected<T, E>: C++23's std::expected for C++20 compilers.
//
// Same names, same semantics as std::expected, std::unexpected,
// std::bad_expected_access and std::unexpect ([expected] of C++23), so that
// moving to C++23 is a rename (`namespace shmq { using std::expected; ... }`).
// tests/native/expected_test.cpp runs the same tests against this header and
// against libstdc++'s std::expected (-std=c++23).
//
// In short: an expected<T, E> holds either a T (has_value()) or an E
// (error()); a T is never constructed when it holds an error. operator* and
// operator-> do not check, like std; value() throws bad_expected_access<E>
// when there is no value (std::abort() without exceptions). Return an error
// as `return shmq::unexpected(err);`.
#pragma once

#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <utility>

#include <shmq/export.hpp>

namespace shmq {

template <class E> class unexpected;
template <class T, class E> class expected;

struct unexpect_t {
	explicit unexpect_t() = default;
};
inline constexpr unexpect_t unexpect{};

namespace detail {

template <class T> inline constexpr bool is_unexpected = false;
template <class E> inline constexpr bool is_unexpected<unexpected<E>> = true;
template <class T> inline constexpr bool is_expected = false;
template <class T, class E> inline constexpr bool is_expected<expected<T, E>> = true;

// What std requires of E (and of unexpected's E): a complete non-array
// object type, not cv-qualified, not an unexpected.
template <class E>
inline constexpr bool valid_error = std::is_object_v<E> && !std::is_array_v<E> &&
				    !is_unexpected<E> && !std::is_const_v<E> &&
				    !std::is_volatile_v<E>;

// Tags for the private constructors that build a value or an error in place
// from the result of a function (transform, transform_error): the result is
// never moved, as std requires.
struct expected_invoke_value_t {
	explicit expected_invoke_value_t() = default;
};
struct expected_invoke_error_t {
	explicit expected_invoke_error_t() = default;
};

[[noreturn]] inline void expected_abort() noexcept { std::abort(); }

// Constructs neither member: the derived constructor does (copy, move and
// converting constructors, which know only at run time which one).
struct expected_uninit_t {
	explicit expected_uninit_t() = default;
};

// The union and the flag of expected<T, E>, and its destructor: trivial when
// T's and E's are, by specialisation rather than by a constrained destructor,
// which compilers before clang 16 do not support.
template <class T, class E,
	  bool = std::is_trivially_destructible_v<T> && std::is_trivially_destructible_v<E>>
struct expected_storage {
	template <class... A>
	constexpr explicit expected_storage(std::in_place_t, A &&...a)
		: val_(std::forward<A>(a)...), has_val_(true)
	{
	}
	template <class... A>
	constexpr explicit expected_storage(unexpect_t, A &&...a)
		: unex_(std::forward<A>(a)...), has_val_(false)
	{
	}
	template <class Fn>
	constexpr expected_storage(expected_invoke_value_t, Fn &&fn)
		: val_(std::forward<Fn>(fn)()), has_val_(true)
	{
	}
	template <class Fn>
	constexpr expected_storage(expected_invoke_error_t, Fn &&fn)
		: unex_(std::forward<Fn>(fn)()), has_val_(false)
	{
	}
	constexpr expected_storage(expected_uninit_t, bool has) : has_val_(has) {}

	union {
		T val_;
		E unex_;
	};
	bool has_val_;
};

template <class T, class E> struct expected_storage<T, E, false> {
	template <class... A>
	constexpr explicit expected_storage(std::in_place_t, A &&...a)
		: val_(std::forward<A>(a)...), has_val_(true)
	{
	}
	template <class... A>
	constexpr explicit expected_storage(unexpect_t, A &&...a)
		: unex_(std::forward<A>(a)...), has_val_(false)
	{
	}
	template <class Fn>
	constexpr expected_storage(expected_invoke_value_t, Fn &&fn)
		: val_(std::forward<Fn>(fn)()), has_val_(true)
	{
	}
	template <class Fn>
	constexpr expected_storage(expected_invoke_error_t, Fn &&fn)
		: unex_(std::forward<Fn>(fn)()), has_val_(false)
	{
	}
	constexpr expected_storage(expected_uninit_t, bool has) : has_val_(has) {}
	constexpr ~expected_storage()
	{
		if (has_val_)
			std::destroy_at(std::addressof(val_));
		else
			std::destroy_at(std::addressof(unex_));
	}

	union {
		T val_;
		E unex_;
	};
	bool has_val_;
};

// The same for expected<void, E>.
template <class E, bool = std::is_trivially_destructible_v<E>> struct expected_void_storage {
	constexpr explicit expected_void_storage(std::in_place_t) : has_val_(true) {}
	template <class... A>
	constexpr explicit expected_void_storage(unexpect_t, A &&...a)
		: unex_(std::forward<A>(a)...), has_val_(false)
	{
	}
	template <class Fn>
	constexpr expected_void_storage(expected_invoke_error_t, Fn &&fn)
		: unex_(std::forward<Fn>(fn)()), has_val_(false)
	{
	}
	constexpr expected_void_storage(expected_uninit_t, bool has) : has_val_(has) {}

	union {
		E unex_;
	};
	bool has_val_;
};

template <class E> struct expected_void_storage<E, false> {
	constexpr explicit expected_void_storage(std::in_place_t) : has_val_(true) {}
	template <class... A>
	constexpr explicit expected_void_storage(unexpect_t, A &&...a)
		: unex_(std::forward<A>(a)...), has_val_(false)
	{
	}
	template <class Fn>
	constexpr expected_void_storage(expected_invoke_error_t, Fn &&fn)
		: unex_(std::forward<Fn>(fn)()), has_val_(false)
	{
	}
	constexpr expected_void_storage(expected_uninit_t, bool has) : has_val_(has) {}
	constexpr ~expected_void_storage()
	{
		if (!has_val_)
			std::destroy_at(std::addressof(unex_));
	}

	union {
		E unex_;
	};
	bool has_val_;
};

// Replaces *@oldval by a New built from @args, keeping *@oldval if building
// throws ([expected.object.assign], reinit-expected).
template <class New, class Old, class... Args>
constexpr void expected_reinit(New *newval, Old *oldval, Args &&...args)
{
	if constexpr (std::is_nothrow_constructible_v<New, Args...>) {
		std::destroy_at(oldval);
		std::construct_at(newval, std::forward<Args>(args)...);
	} else if constexpr (std::is_nothrow_move_constructible_v<New>) {
		New tmp(std::forward<Args>(args)...);
		std::destroy_at(oldval);
		std::construct_at(newval, std::move(tmp));
	} else {
		Old tmp(std::move(*oldval));
		std::destroy_at(oldval);
#if __cpp_exceptions
		try {
			std::construct_at(newval, std::forward<Args>(args)...);
		} catch (...) {
			std::construct_at(oldval, std::move(tmp));
			throw;
		}
#else
		std::construct_at(newval, std::forward<Args>(args)...);
#endif
	}
}

} // namespace detail

// ---------------------------------------------------------------------------

template <class E> class bad_expected_access;

template <> class SHMQ_API bad_expected_access<void> : public std::exception {
protected:
	bad_expected_access() noexcept = default;
	bad_expected_access(const bad_expected_access &) = default;
	bad_expected_access(bad_expected_access &&) = default;
	bad_expected_access &operator=(const bad_expected_access &) = default;
	bad_expected_access &operator=(bad_expected_access &&) = default;
	~bad_expected_access() override = default;

public:
	[[nodiscard]] const char *what() const noexcept override
	{
		return "bad access to shmq::expected without expected value";
	}
};

template <class E> class SHMQ_API bad_expected_access : public bad_expected_access<void> {
public:
	explicit bad_expected_access(E e) : unex_(std::move(e)) {}
	[[nodiscard]] const char *what() const noexcept override
	{
		return "bad access to shmq::expected without expected value";
	}
	[[nodiscard]] E &error() & noexcept { return unex_; }
	[[nodiscard]] const E &error() const & noexcept { return unex_; }
	[[nodiscard]] E &&error() && noexcept { return std::move(unex_); }
	[[nodiscard]] const E &&error() const && noexcept { return std::move(unex_); }

private:
	E unex_;
};

namespace detail {
template <class E> [[noreturn]] void throw_bad_expected_access(E &&e)
{
#if __cpp_exceptions
	throw bad_expected_access<std::decay_t<E>>(std::forward<E>(e));
#else
	(void)e;
	expected_abort();
#endif
}
} // namespace detail

// ---------------------------------------------------------------------------

template <class E> class unexpected {
	static_assert(detail::valid_error<E>, "unexpected<E>: E must be a non-array, non-cv "
					      "object type that is not an unexpected");

public:
	constexpr unexpected(const unexpected &) = default;
	constexpr unexpected(unexpected &&) = default;

	template <class Err = E>
		requires(!std::is_same_v<std::remove_cvref_t<Err>, unexpected> &&
			 !std::is_same_v<std::remove_cvref_t<Err>, std::in_place_t> &&
			 std::is_constructible_v<E, Err>)
	constexpr explicit unexpected(Err &&e) noexcept(std::is_nothrow_constructible_v<E, Err>)
		: unex_(std::forward<Err>(e))
	{
	}

	template <class... Args>
		requires std::is_constructible_v<E, Args...>
	constexpr explicit unexpected(std::in_place_t, Args &&...args) noexcept(
		std::is_nothrow_constructible_v<E, Args...>)
		: unex_(std::forward<Args>(args)...)
	{
	}

	template <class U, class... Args>
		requires std::is_constructible_v<E, std::initializer_list<U> &, Args...>
	constexpr explicit unexpected(std::in_place_t, std::initializer_list<U> il,
				      Args &&...args) noexcept(std::
								       is_nothrow_constructible_v<
									       E, std::initializer_list<U> &,
									       Args...>)
		: unex_(il, std::forward<Args>(args)...)
	{
	}

	constexpr unexpected &operator=(const unexpected &) = default;
	constexpr unexpected &operator=(unexpected &&) = default;

	[[nodiscard]] constexpr const E &error() const & noexcept { return unex_; }
	[[nodiscard]] constexpr E &error() & noexcept { return unex_; }
	[[nodiscard]] constexpr const E &&error() const && noexcept { return std::move(unex_); }
	[[nodiscard]] constexpr E &&error() && noexcept { return std::move(unex_); }

	constexpr void swap(unexpected &other) noexcept(std::is_nothrow_swappable_v<E>)
		requires std::is_swappable_v<E>
	{
		using std::swap;
		swap(unex_, other.unex_);
	}

	template <class E2>
	[[nodiscard]] friend constexpr bool operator==(const unexpected &x, const unexpected<E2> &y)
	{
		return x.error() == y.error();
	}

	friend constexpr void swap(unexpected &x, unexpected &y) noexcept(noexcept(x.swap(y)))
		requires std::is_swappable_v<E>
	{
		x.swap(y);
	}

private:
	E unex_;
};

template <class E> unexpected(E) -> unexpected<E>;

// ---------------------------------------------------------------------------

template <class T, class E>
class [[nodiscard]] expected : private detail::expected_storage<T, E> {
	using base = detail::expected_storage<T, E>;
	using base::has_val_;
	using base::unex_;
	using base::val_;

	static_assert(!std::is_reference_v<T> && !std::is_function_v<T> &&
			      !std::is_same_v<std::remove_cv_t<T>, std::in_place_t> &&
			      !std::is_same_v<std::remove_cv_t<T>, unexpect_t> &&
			      !detail::is_unexpected<std::remove_cv_t<T>>,
		      "expected<T, E>: T must be an object type (or void), not in_place_t, "
		      "unexpect_t or an unexpected");
	static_assert(detail::valid_error<E>, "expected<T, E>: E must be a non-array, non-cv "
					      "object type that is not an unexpected");

	template <class, class> friend class expected;

	// [expected.object.cons]: whether T could be built from (or converted
	// from) an expected<U, G> itself, in which case the converting
	// constructors stay out of the way.
	// A T that is bool is exempt from the first half, as in std.
	template <class U, class G>
	static constexpr bool cons_from_expected =
		(!std::is_same_v<std::remove_cv_t<T>, bool> &&
		 (std::is_constructible_v<T, expected<U, G> &> ||
		  std::is_constructible_v<T, expected<U, G>> ||
		  std::is_constructible_v<T, const expected<U, G> &> ||
		  std::is_constructible_v<T, const expected<U, G>> ||
		  std::is_convertible_v<expected<U, G> &, T> ||
		  std::is_convertible_v<expected<U, G>, T> ||
		  std::is_convertible_v<const expected<U, G> &, T> ||
		  std::is_convertible_v<const expected<U, G>, T>)) ||
		std::is_constructible_v<unexpected<E>, expected<U, G> &> ||
		std::is_constructible_v<unexpected<E>, expected<U, G>> ||
		std::is_constructible_v<unexpected<E>, const expected<U, G> &> ||
		std::is_constructible_v<unexpected<E>, const expected<U, G>>;

public:
	using value_type = T;
	using error_type = E;
	using unexpected_type = unexpected<E>;
	template <class U> using rebind = expected<U, error_type>;

	constexpr expected() noexcept(std::is_nothrow_default_constructible_v<T>)
		requires std::is_default_constructible_v<T>
		: base(std::in_place)
	{
	}

	constexpr expected(const expected &) = default;
	constexpr expected(const expected &x) noexcept(std::is_nothrow_copy_constructible_v<T> &&
						       std::is_nothrow_copy_constructible_v<E>)
		requires std::is_copy_constructible_v<T> && std::is_copy_constructible_v<E> &&
			 (!std::is_trivially_copy_constructible_v<T> ||
			  !std::is_trivially_copy_constructible_v<E>)
		: base(detail::expected_uninit_t{}, x.has_val_)
	{
		if (has_val_)
			std::construct_at(std::addressof(val_), x.val_);
		else
			std::construct_at(std::addressof(unex_), x.unex_);
	}

	constexpr expected(expected &&) = default;
	constexpr expected(expected &&x) noexcept(std::is_nothrow_move_constructible_v<T> &&
						  std::is_nothrow_move_constructible_v<E>)
		requires std::is_move_constructible_v<T> && std::is_move_constructible_v<E> &&
			 (!std::is_trivially_move_constructible_v<T> ||
			  !std::is_trivially_move_constructible_v<E>)
		: base(detail::expected_uninit_t{}, x.has_val_)
	{
		if (has_val_)
			std::construct_at(std::addressof(val_), std::move(x).val_);
		else
			std::construct_at(std::addressof(unex_), std::move(x).unex_);
	}

	template <class U, class G>
		requires std::is_constructible_v<T, const U &> &&
			 std::is_constructible_v<E, const G &> && (!cons_from_expected<U, G>)
	constexpr explicit(!std::is_convertible_v<const U &, T> ||
			   !std::is_convertible_v<const G &, E>)
		expected(const expected<U, G> &x) noexcept(
			std::is_nothrow_constructible_v<T, const U &> &&
			std::is_nothrow_constructible_v<E, const G &>)
		: base(detail::expected_uninit_t{}, x.has_val_)
	{
		if (has_val_)
			std::construct_at(std::addressof(val_), x.val_);
		else
			std::construct_at(std::addressof(unex_), x.unex_);
	}

	template <class U, class G>
		requires std::is_constructible_v<T, U> && std::is_constructible_v<E, G> &&
			 (!cons_from_expected<U, G>)
	constexpr explicit(!std::is_convertible_v<U, T> || !std::is_convertible_v<G, E>)
		expected(expected<U, G> &&x) noexcept(std::is_nothrow_constructible_v<T, U> &&
						      std::is_nothrow_constructible_v<E, G>)
		: base(detail::expected_uninit_t{}, x.has_val_)
	{
		if (has_val_)
			std::construct_at(std::addressof(val_), std::move(x).val_);
		else
			std::construct_at(std::addressof(unex_), std::move(x).unex_);
	}

	template <class U = T>
		requires(!std::is_same_v<std::remove_cvref_t<U>, std::in_place_t>) &&
			(!std::is_same_v<expected, std::remove_cvref_t<U>>) &&
			(!detail::is_unexpected<std::remove_cvref_t<U>>) &&
			std::is_constructible_v<T, U> &&
			(!std::is_same_v<std::remove_cv_t<T>, bool> ||
			 !detail::is_expected<std::remove_cvref_t<U>>)
	constexpr explicit(!std::is_convertible_v<U, T>)
		expected(U &&v) noexcept(std::is_nothrow_constructible_v<T, U>)
		: base(std::in_place, std::forward<U>(v))
	{
	}

	template <class G>
		requires std::is_constructible_v<E, const G &>
	constexpr explicit(!std::is_convertible_v<const G &, E>)
		expected(const unexpected<G> &e) noexcept(std::is_nothrow_constructible_v<E, const G &>)
		: base(unexpect, e.error())
	{
	}

	template <class G>
		requires std::is_constructible_v<E, G>
	constexpr explicit(!std::is_convertible_v<G, E>)
		expected(unexpected<G> &&e) noexcept(std::is_nothrow_constructible_v<E, G>)
		: base(unexpect, std::move(e).error())
	{
	}

	template <class... Args>
		requires std::is_constructible_v<T, Args...>
	constexpr explicit expected(std::in_place_t, Args &&...args) noexcept(
		std::is_nothrow_constructible_v<T, Args...>)
		: base(std::in_place, std::forward<Args>(args)...)
	{
	}

	template <class U, class... Args>
		requires std::is_constructible_v<T, std::initializer_list<U> &, Args...>
	constexpr explicit expected(std::in_place_t, std::initializer_list<U> il,
				    Args &&...args) noexcept(std::
								     is_nothrow_constructible_v<
									     T, std::initializer_list<U> &,
									     Args...>)
		: base(std::in_place, il, std::forward<Args>(args)...)
	{
	}

	template <class... Args>
		requires std::is_constructible_v<E, Args...>
	constexpr explicit expected(unexpect_t, Args &&...args) noexcept(
		std::is_nothrow_constructible_v<E, Args...>)
		: base(unexpect, std::forward<Args>(args)...)
	{
	}

	template <class U, class... Args>
		requires std::is_constructible_v<E, std::initializer_list<U> &, Args...>
	constexpr explicit expected(unexpect_t, std::initializer_list<U> il,
				    Args &&...args) noexcept(std::
								     is_nothrow_constructible_v<
									     E, std::initializer_list<U> &,
									     Args...>)
		: base(unexpect, il, std::forward<Args>(args)...)
	{
	}

	// [expected.object.assign]
	constexpr expected &operator=(const expected &) = delete;
	constexpr expected &operator=(const expected &x) noexcept(
		std::is_nothrow_copy_constructible_v<T> && std::is_nothrow_copy_assignable_v<T> &&
		std::is_nothrow_copy_constructible_v<E> && std::is_nothrow_copy_assignable_v<E>)
		requires std::is_copy_assignable_v<T> && std::is_copy_constructible_v<T> &&
			 std::is_copy_assignable_v<E> && std::is_copy_constructible_v<E> &&
			 (std::is_nothrow_move_constructible_v<T> ||
			  std::is_nothrow_move_constructible_v<E>)
	{
		if (x.has_val_)
			assign_val(x.val_);
		else
			assign_unex(x.unex_);
		return *this;
	}

	constexpr expected &operator=(expected &&x) noexcept(
		std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T> &&
		std::is_nothrow_move_constructible_v<E> && std::is_nothrow_move_assignable_v<E>)
		requires std::is_move_assignable_v<T> && std::is_move_constructible_v<T> &&
			 std::is_move_assignable_v<E> && std::is_move_constructible_v<E> &&
			 (std::is_nothrow_move_constructible_v<T> ||
			  std::is_nothrow_move_constructible_v<E>)
	{
		if (x.has_val_)
			assign_val(std::move(x.val_));
		else
			assign_unex(std::move(x.unex_));
		return *this;
	}

	template <class U = T>
		requires(!std::is_same_v<expected, std::remove_cvref_t<U>>) &&
			(!detail::is_unexpected<std::remove_cvref_t<U>>) &&
			std::is_constructible_v<T, U> && std::is_assignable_v<T &, U> &&
			(std::is_nothrow_constructible_v<T, U> ||
			 std::is_nothrow_move_constructible_v<T> ||
			 std::is_nothrow_move_constructible_v<E>)
	constexpr expected &operator=(U &&v)
	{
		assign_val(std::forward<U>(v));
		return *this;
	}

	template <class G>
		requires std::is_constructible_v<E, const G &> && std::is_assignable_v<E &, const G &> &&
			 (std::is_nothrow_constructible_v<E, const G &> ||
			  std::is_nothrow_move_constructible_v<T> ||
			  std::is_nothrow_move_constructible_v<E>)
	constexpr expected &operator=(const unexpected<G> &e)
	{
		assign_unex(e.error());
		return *this;
	}

	template <class G>
		requires std::is_constructible_v<E, G> && std::is_assignable_v<E &, G> &&
			 (std::is_nothrow_constructible_v<E, G> ||
			  std::is_nothrow_move_constructible_v<T> ||
			  std::is_nothrow_move_constructible_v<E>)
	constexpr expected &operator=(unexpected<G> &&e)
	{
		assign_unex(std::move(e).error());
		return *this;
	}

	template <class... Args>
		requires std::is_nothrow_constructible_v<T, Args...>
	constexpr T &emplace(Args &&...args) noexcept
	{
		if (has_val_)
			std::destroy_at(std::addressof(val_));
		else
			std::destroy_at(std::addressof(unex_));
		std::construct_at(std::addressof(val_), std::forward<Args>(args)...);
		has_val_ = true;
		return val_;
	}

	template <class U, class... Args>
		requires std::is_nothrow_constructible_v<T, std::initializer_list<U> &, Args...>
	constexpr T &emplace(std::initializer_list<U> il, Args &&...args) noexcept
	{
		if (has_val_)
			std::destroy_at(std::addressof(val_));
		else
			std::destroy_at(std::addressof(unex_));
		std::construct_at(std::addressof(val_), il, std::forward<Args>(args)...);
		has_val_ = true;
		return val_;
	}

	// [expected.object.swap]
	constexpr void swap(expected &x) noexcept(std::is_nothrow_move_constructible_v<T> &&
						  std::is_nothrow_swappable_v<T> &&
						  std::is_nothrow_move_constructible_v<E> &&
						  std::is_nothrow_swappable_v<E>)
		requires std::is_swappable_v<T> && std::is_swappable_v<E> &&
			 std::is_move_constructible_v<T> && std::is_move_constructible_v<E> &&
			 (std::is_nothrow_move_constructible_v<T> ||
			  std::is_nothrow_move_constructible_v<E>)
	{
		if (has_val_ && x.has_val_) {
			using std::swap;
			swap(val_, x.val_);
		} else if (!has_val_ && !x.has_val_) {
			using std::swap;
			swap(unex_, x.unex_);
		} else if (has_val_) {
			x.swap_val_unex(*this);
		} else {
			swap_val_unex(x);
		}
	}

	friend constexpr void swap(expected &x, expected &y) noexcept(noexcept(x.swap(y)))
		requires requires { x.swap(y); }
	{
		x.swap(y);
	}

	// [expected.object.obs]: operator-> and operator* do not check.
	[[nodiscard]] constexpr const T *operator->() const noexcept { return std::addressof(val_); }
	[[nodiscard]] constexpr T *operator->() noexcept { return std::addressof(val_); }
	[[nodiscard]] constexpr const T &operator*() const & noexcept { return val_; }
	[[nodiscard]] constexpr T &operator*() & noexcept { return val_; }
	[[nodiscard]] constexpr const T &&operator*() const && noexcept { return std::move(val_); }
	[[nodiscard]] constexpr T &&operator*() && noexcept { return std::move(val_); }
	[[nodiscard]] constexpr explicit operator bool() const noexcept { return has_val_; }
	[[nodiscard]] constexpr bool has_value() const noexcept { return has_val_; }

	[[nodiscard]] constexpr const T &value() const &
	{
		static_assert(std::is_copy_constructible_v<E>);
		if (has_val_) [[likely]]
			return val_;
		detail::throw_bad_expected_access(std::as_const(unex_));
	}
	[[nodiscard]] constexpr T &value() &
	{
		static_assert(std::is_copy_constructible_v<E>);
		if (has_val_) [[likely]]
			return val_;
		detail::throw_bad_expected_access(std::as_const(unex_));
	}
	[[nodiscard]] constexpr const T &&value() const &&
	{
		static_assert(std::is_copy_constructible_v<E>);
		if (has_val_) [[likely]]
			return std::move(val_);
		detail::throw_bad_expected_access(std::move(unex_));
	}
	[[nodiscard]] constexpr T &&value() &&
	{
		static_assert(std::is_move_constructible_v<E>);
		if (has_val_) [[likely]]
			return std::move(val_);
		detail::throw_bad_expected_access(std::move(unex_));
	}

	// Not checked, like std: only on an expected that holds an error.
	[[nodiscard]] constexpr const E &error() const & noexcept { return unex_; }
	[[nodiscard]] constexpr E &error() & noexcept { return unex_; }
	[[nodiscard]] constexpr const E &&error() const && noexcept { return std::move(unex_); }
	[[nodiscard]] constexpr E &&error() && noexcept { return std::move(unex_); }

	template <class U> [[nodiscard]] constexpr T value_or(U &&v) const &
	{
		static_assert(std::is_copy_constructible_v<T> && std::is_convertible_v<U, T>);
		if (has_val_)
			return val_;
		return static_cast<T>(std::forward<U>(v));
	}
	template <class U> [[nodiscard]] constexpr T value_or(U &&v) &&
	{
		static_assert(std::is_move_constructible_v<T> && std::is_convertible_v<U, T>);
		if (has_val_)
			return std::move(val_);
		return static_cast<T>(std::forward<U>(v));
	}

	template <class G = E> [[nodiscard]] constexpr E error_or(G &&e) const &
	{
		static_assert(std::is_copy_constructible_v<E> && std::is_convertible_v<G, E>);
		if (has_val_)
			return std::forward<G>(e);
		return unex_;
	}
	template <class G = E> [[nodiscard]] constexpr E error_or(G &&e) &&
	{
		static_assert(std::is_move_constructible_v<E> && std::is_convertible_v<G, E>);
		if (has_val_)
			return std::forward<G>(e);
		return std::move(unex_);
	}

	// [expected.object.monadic]
	template <class F>
		requires std::is_constructible_v<E, E &>
	constexpr auto and_then(F &&f) &
	{
		return and_then_impl(std::forward<F>(f), val_, unex_);
	}
	template <class F>
		requires std::is_constructible_v<E, const E &>
	constexpr auto and_then(F &&f) const &
	{
		return and_then_impl(std::forward<F>(f), val_, unex_);
	}
	template <class F>
		requires std::is_constructible_v<E, E &&>
	constexpr auto and_then(F &&f) &&
	{
		return and_then_impl(std::forward<F>(f), std::move(val_), std::move(unex_));
	}
	template <class F>
		requires std::is_constructible_v<E, const E &&>
	constexpr auto and_then(F &&f) const &&
	{
		return and_then_impl(std::forward<F>(f), std::move(val_), std::move(unex_));
	}

	template <class F>
		requires std::is_constructible_v<T, T &>
	constexpr auto or_else(F &&f) &
	{
		return or_else_impl(std::forward<F>(f), val_, unex_);
	}
	template <class F>
		requires std::is_constructible_v<T, const T &>
	constexpr auto or_else(F &&f) const &
	{
		return or_else_impl(std::forward<F>(f), val_, unex_);
	}
	template <class F>
		requires std::is_constructible_v<T, T &&>
	constexpr auto or_else(F &&f) &&
	{
		return or_else_impl(std::forward<F>(f), std::move(val_), std::move(unex_));
	}
	template <class F>
		requires std::is_constructible_v<T, const T &&>
	constexpr auto or_else(F &&f) const &&
	{
		return or_else_impl(std::forward<F>(f), std::move(val_), std::move(unex_));
	}

	template <class F>
		requires std::is_constructible_v<E, E &>
	constexpr auto transform(F &&f) &
	{
		return transform_impl(std::forward<F>(f), val_, unex_);
	}
	template <class F>
		requires std::is_constructible_v<E, const E &>
	constexpr auto transform(F &&f) const &
	{
		return transform_impl(std::forward<F>(f), val_, unex_);
	}
	template <class F>
		requires std::is_constructible_v<E, E &&>
	constexpr auto transform(F &&f) &&
	{
		return transform_impl(std::forward<F>(f), std::move(val_), std::move(unex_));
	}
	template <class F>
		requires std::is_constructible_v<E, const E &&>
	constexpr auto transform(F &&f) const &&
	{
		return transform_impl(std::forward<F>(f), std::move(val_), std::move(unex_));
	}

	template <class F>
		requires std::is_constructible_v<T, T &>
	constexpr auto transform_error(F &&f) &
	{
		return transform_error_impl(std::forward<F>(f), val_, unex_);
	}
	template <class F>
		requires std::is_constructible_v<T, const T &>
	constexpr auto transform_error(F &&f) const &
	{
		return transform_error_impl(std::forward<F>(f), val_, unex_);
	}
	template <class F>
		requires std::is_constructible_v<T, T &&>
	constexpr auto transform_error(F &&f) &&
	{
		return transform_error_impl(std::forward<F>(f), std::move(val_), std::move(unex_));
	}
	template <class F>
		requires std::is_constructible_v<T, const T &&>
	constexpr auto transform_error(F &&f) const &&
	{
		return transform_error_impl(std::forward<F>(f), std::move(val_), std::move(unex_));
	}

	// [expected.object.eq]
	template <class T2, class E2>
		requires(!std::is_void_v<T2>)
	[[nodiscard]] friend constexpr bool operator==(const expected &x, const expected<T2, E2> &y)
	{
		if (x.has_value() != y.has_value())
			return false;
		return x.has_value() ? bool(*x == *y) : bool(x.error() == y.error());
	}
	template <class T2>
		requires(!detail::is_expected<T2>)
	[[nodiscard]] friend constexpr bool operator==(const expected &x, const T2 &v)
	{
		return x.has_value() && bool(*x == v);
	}
	template <class E2>
	[[nodiscard]] friend constexpr bool operator==(const expected &x, const unexpected<E2> &e)
	{
		return !x.has_value() && bool(x.error() == e.error());
	}

private:
	template <class Fn>
	constexpr explicit expected(detail::expected_invoke_value_t, Fn &&fn)
		: base(detail::expected_invoke_value_t{}, std::forward<Fn>(fn))
	{
	}
	template <class Fn>
	constexpr explicit expected(detail::expected_invoke_error_t, Fn &&fn)
		: base(detail::expected_invoke_error_t{}, std::forward<Fn>(fn))
	{
	}

	template <class V> constexpr void assign_val(V &&v)
	{
		if (has_val_) {
			val_ = std::forward<V>(v);
		} else {
			detail::expected_reinit(std::addressof(val_), std::addressof(unex_),
						std::forward<V>(v));
			has_val_ = true;
		}
	}
	template <class G> constexpr void assign_unex(G &&g)
	{
		if (!has_val_) {
			unex_ = std::forward<G>(g);
		} else {
			detail::expected_reinit(std::addressof(unex_), std::addressof(val_),
						std::forward<G>(g));
			has_val_ = false;
		}
	}
	// *this holds an error, @x a value.
	constexpr void swap_val_unex(expected &x)
	{
		if constexpr (std::is_nothrow_move_constructible_v<E>) {
			E tmp(std::move(unex_));
			std::destroy_at(std::addressof(unex_));
#if __cpp_exceptions
			try {
				std::construct_at(std::addressof(val_), std::move(x.val_));
			} catch (...) {
				std::construct_at(std::addressof(unex_), std::move(tmp));
				throw;
			}
#else
			std::construct_at(std::addressof(val_), std::move(x.val_));
#endif
			std::destroy_at(std::addressof(x.val_));
			std::construct_at(std::addressof(x.unex_), std::move(tmp));
		} else {
			T tmp(std::move(x.val_));
			std::destroy_at(std::addressof(x.val_));
#if __cpp_exceptions
			try {
				std::construct_at(std::addressof(x.unex_), std::move(unex_));
			} catch (...) {
				std::construct_at(std::addressof(x.val_), std::move(tmp));
				throw;
			}
#else
			std::construct_at(std::addressof(x.unex_), std::move(unex_));
#endif
			std::destroy_at(std::addressof(unex_));
			std::construct_at(std::addressof(val_), std::move(tmp));
		}
		has_val_ = true;
		x.has_val_ = false;
	}

	template <class F, class V, class G>
	constexpr auto and_then_impl(F &&f, V &&v, G &&g) const
	{
		using U = std::remove_cvref_t<std::invoke_result_t<F, V>>;
		static_assert(detail::is_expected<U>, "and_then: F must return an expected");
		static_assert(std::is_same_v<typename U::error_type, E>,
			      "and_then: F must return an expected with the same error type");
		if (has_val_)
			return std::invoke(std::forward<F>(f), std::forward<V>(v));
		return U(unexpect, std::forward<G>(g));
	}
	template <class F, class V, class G>
	constexpr auto or_else_impl(F &&f, V &&v, G &&g) const
	{
		using U = std::remove_cvref_t<std::invoke_result_t<F, G>>;
		static_assert(detail::is_expected<U>, "or_else: F must return an expected");
		static_assert(std::is_same_v<typename U::value_type, T>,
			      "or_else: F must return an expected with the same value type");
		if (has_val_)
			return U(std::in_place, std::forward<V>(v));
		return std::invoke(std::forward<F>(f), std::forward<G>(g));
	}
	template <class F, class V, class G>
	constexpr auto transform_impl(F &&f, V &&v, G &&g) const
	{
		using U = std::remove_cv_t<std::invoke_result_t<F, V>>;
		using R = expected<U, E>;
		if (!has_val_)
			return R(unexpect, std::forward<G>(g));
		if constexpr (std::is_void_v<U>) {
			std::invoke(std::forward<F>(f), std::forward<V>(v));
			return R();
		} else {
			return R(detail::expected_invoke_value_t{},
				 [&]() -> decltype(auto) {
					 return std::invoke(std::forward<F>(f), std::forward<V>(v));
				 });
		}
	}
	template <class F, class V, class G>
	constexpr auto transform_error_impl(F &&f, V &&v, G &&g) const
	{
		using H = std::remove_cv_t<std::invoke_result_t<F, G>>;
		using R = expected<T, H>;
		if (has_val_)
			return R(std::in_place, std::forward<V>(v));
		return R(detail::expected_invoke_error_t{}, [&]() -> decltype(auto) {
			return std::invoke(std::forward<F>(f), std::forward<G>(g));
		});
	}
};

// ---------------------------------------------------------------------------
// expected<void, E> ([expected.void])

template <class T, class E>
	requires std::is_void_v<T>
class [[nodiscard]] expected<T, E> : private detail::expected_void_storage<E> {
	using base = detail::expected_void_storage<E>;
	using base::has_val_;
	using base::unex_;

	static_assert(detail::valid_error<E>, "expected<void, E>: E must be a non-array, non-cv "
					      "object type that is not an unexpected");

	template <class, class> friend class expected;

	template <class U, class G>
	static constexpr bool cons_from_expected =
		std::is_constructible_v<unexpected<E>, expected<U, G> &> ||
		std::is_constructible_v<unexpected<E>, expected<U, G>> ||
		std::is_constructible_v<unexpected<E>, const expected<U, G> &> ||
		std::is_constructible_v<unexpected<E>, const expected<U, G>>;

public:
	using value_type = T;
	using error_type = E;
	using unexpected_type = unexpected<E>;
	template <class U> using rebind = expected<U, error_type>;

	constexpr expected() noexcept : base(std::in_place) {}

	constexpr expected(const expected &) = default;
	constexpr expected(const expected &x) noexcept(std::is_nothrow_copy_constructible_v<E>)
		requires std::is_copy_constructible_v<E> && (!std::is_trivially_copy_constructible_v<E>)
		: base(detail::expected_uninit_t{}, x.has_val_)
	{
		if (!has_val_)
			std::construct_at(std::addressof(unex_), x.unex_);
	}

	constexpr expected(expected &&) = default;
	constexpr expected(expected &&x) noexcept(std::is_nothrow_move_constructible_v<E>)
		requires std::is_move_constructible_v<E> && (!std::is_trivially_move_constructible_v<E>)
		: base(detail::expected_uninit_t{}, x.has_val_)
	{
		if (!has_val_)
			std::construct_at(std::addressof(unex_), std::move(x).unex_);
	}

	template <class U, class G>
		requires std::is_void_v<U> && std::is_constructible_v<E, const G &> &&
			 (!cons_from_expected<U, G>)
	constexpr explicit(!std::is_convertible_v<const G &, E>)
		expected(const expected<U, G> &x) noexcept(std::is_nothrow_constructible_v<E, const G &>)
		: base(detail::expected_uninit_t{}, x.has_val_)
	{
		if (!has_val_)
			std::construct_at(std::addressof(unex_), x.unex_);
	}

	template <class U, class G>
		requires std::is_void_v<U> && std::is_constructible_v<E, G> && (!cons_from_expected<U, G>)
	constexpr explicit(!std::is_convertible_v<G, E>)
		expected(expected<U, G> &&x) noexcept(std::is_nothrow_constructible_v<E, G>)
		: base(detail::expected_uninit_t{}, x.has_val_)
	{
		if (!has_val_)
			std::construct_at(std::addressof(unex_), std::move(x).unex_);
	}

	template <class G>
		requires std::is_constructible_v<E, const G &>
	constexpr explicit(!std::is_convertible_v<const G &, E>)
		expected(const unexpected<G> &e) noexcept(std::is_nothrow_constructible_v<E, const G &>)
		: base(unexpect, e.error())
	{
	}

	template <class G>
		requires std::is_constructible_v<E, G>
	constexpr explicit(!std::is_convertible_v<G, E>)
		expected(unexpected<G> &&e) noexcept(std::is_nothrow_constructible_v<E, G>)
		: base(unexpect, std::move(e).error())
	{
	}

	constexpr explicit expected(std::in_place_t) noexcept : base(std::in_place) {}

	template <class... Args>
		requires std::is_constructible_v<E, Args...>
	constexpr explicit expected(unexpect_t, Args &&...args) noexcept(
		std::is_nothrow_constructible_v<E, Args...>)
		: base(unexpect, std::forward<Args>(args)...)
	{
	}

	template <class U, class... Args>
		requires std::is_constructible_v<E, std::initializer_list<U> &, Args...>
	constexpr explicit expected(unexpect_t, std::initializer_list<U> il,
				    Args &&...args) noexcept(std::
								     is_nothrow_constructible_v<
									     E, std::initializer_list<U> &,
									     Args...>)
		: base(unexpect, il, std::forward<Args>(args)...)
	{
	}

	constexpr expected &operator=(const expected &) = delete;
	constexpr expected &operator=(const expected &x) noexcept(
		std::is_nothrow_copy_constructible_v<E> && std::is_nothrow_copy_assignable_v<E>)
		requires std::is_copy_assignable_v<E> && std::is_copy_constructible_v<E>
	{
		if (x.has_val_)
			emplace();
		else
			assign_unex(x.unex_);
		return *this;
	}

	constexpr expected &operator=(expected &&x) noexcept(
		std::is_nothrow_move_constructible_v<E> && std::is_nothrow_move_assignable_v<E>)
		requires std::is_move_assignable_v<E> && std::is_move_constructible_v<E>
	{
		if (x.has_val_)
			emplace();
		else
			assign_unex(std::move(x.unex_));
		return *this;
	}

	template <class G>
		requires std::is_constructible_v<E, const G &> && std::is_assignable_v<E &, const G &>
	constexpr expected &operator=(const unexpected<G> &e)
	{
		assign_unex(e.error());
		return *this;
	}

	template <class G>
		requires std::is_constructible_v<E, G> && std::is_assignable_v<E &, G>
	constexpr expected &operator=(unexpected<G> &&e)
	{
		assign_unex(std::move(e).error());
		return *this;
	}

	constexpr void emplace() noexcept
	{
		if (!has_val_) {
			std::destroy_at(std::addressof(unex_));
			has_val_ = true;
		}
	}

	constexpr void swap(expected &x) noexcept(std::is_nothrow_move_constructible_v<E> &&
						  std::is_nothrow_swappable_v<E>)
		requires std::is_swappable_v<E> && std::is_move_constructible_v<E>
	{
		if (has_val_ && x.has_val_)
			return;
		if (!has_val_ && !x.has_val_) {
			using std::swap;
			swap(unex_, x.unex_);
			return;
		}
		expected &withval = has_val_ ? *this : x;
		expected &witherr = has_val_ ? x : *this;
		std::construct_at(std::addressof(withval.unex_), std::move(witherr.unex_));
		std::destroy_at(std::addressof(witherr.unex_));
		withval.has_val_ = false;
		witherr.has_val_ = true;
	}

	friend constexpr void swap(expected &x, expected &y) noexcept(noexcept(x.swap(y)))
		requires requires { x.swap(y); }
	{
		x.swap(y);
	}

	[[nodiscard]] constexpr explicit operator bool() const noexcept { return has_val_; }
	[[nodiscard]] constexpr bool has_value() const noexcept { return has_val_; }
	constexpr void operator*() const noexcept {}

	constexpr void value() const &
	{
		static_assert(std::is_copy_constructible_v<E>);
		if (has_val_) [[likely]]
			return;
		detail::throw_bad_expected_access(unex_);
	}
	constexpr void value() &&
	{
		static_assert(std::is_copy_constructible_v<E> && std::is_move_constructible_v<E>);
		if (has_val_) [[likely]]
			return;
		detail::throw_bad_expected_access(std::move(unex_));
	}

	[[nodiscard]] constexpr const E &error() const & noexcept { return unex_; }
	[[nodiscard]] constexpr E &error() & noexcept { return unex_; }
	[[nodiscard]] constexpr const E &&error() const && noexcept { return std::move(unex_); }
	[[nodiscard]] constexpr E &&error() && noexcept { return std::move(unex_); }

	template <class G = E> [[nodiscard]] constexpr E error_or(G &&e) const &
	{
		static_assert(std::is_copy_constructible_v<E> && std::is_convertible_v<G, E>);
		if (has_val_)
			return std::forward<G>(e);
		return unex_;
	}
	template <class G = E> [[nodiscard]] constexpr E error_or(G &&e) &&
	{
		static_assert(std::is_move_constructible_v<E> && std::is_convertible_v<G, E>);
		if (has_val_)
			return std::forward<G>(e);
		return std::move(unex_);
	}

	template <class F>
		requires std::is_constructible_v<E, E &>
	constexpr auto and_then(F &&f) &
	{
		return and_then_impl(std::forward<F>(f), unex_);
	}
	template <class F>
		requires std::is_constructible_v<E, const E &>
	constexpr auto and_then(F &&f) const &
	{
		return and_then_impl(std::forward<F>(f), unex_);
	}
	template <class F>
		requires std::is_constructible_v<E, E &&>
	constexpr auto and_then(F &&f) &&
	{
		return and_then_impl(std::forward<F>(f), std::move(unex_));
	}
	template <class F>
		requires std::is_constructible_v<E, const E &&>
	constexpr auto and_then(F &&f) const &&
	{
		return and_then_impl(std::forward<F>(f), std::move(unex_));
	}

	template <class F> constexpr auto or_else(F &&f) &
	{
		return or_else_impl(std::forward<F>(f), unex_);
	}
	template <class F> constexpr auto or_else(F &&f) const &
	{
		return or_else_impl(std::forward<F>(f), unex_);
	}
	template <class F> constexpr auto or_else(F &&f) &&
	{
		return or_else_impl(std::forward<F>(f), std::move(unex_));
	}
	template <class F> constexpr auto or_else(F &&f) const &&
	{
		return or_else_impl(std::forward<F>(f), std::move(unex_));
	}

	template <class F>
		requires std::is_constructible_v<E, E &>
	constexpr auto transform(F &&f) &
	{
		return transform_impl(std::forward<F>(f), unex_);
	}
	template <class F>
		requires std::is_constructible_v<E, const E &>
	constexpr auto transform(F &&f) const &
	{
		return transform_impl(std::forward<F>(f), unex_);
	}
	template <class F>
		requires std::is_constructible_v<E, E &&>
	constexpr auto transform(F &&f) &&
	{
		return transform_impl(std::forward<F>(f), std::move(unex_));
	}
	template <class F>
		requires std::is_constructible_v<E, const E &&>
	constexpr auto transform(F &&f) const &&
	{
		return transform_impl(std::forward<F>(f), std::move(unex_));
	}

	template <class F> constexpr auto transform_error(F &&f) &
	{
		return transform_error_impl(std::forward<F>(f), unex_);
	}
	template <class F> constexpr auto transform_error(F &&f) const &
	{
		return transform_error_impl(std::forward<F>(f), unex_);
	}
	template <class F> constexpr auto transform_error(F &&f) &&
	{
		return transform_error_impl(std::forward<F>(f), std::move(unex_));
	}
	template <class F> constexpr auto transform_error(F &&f) const &&
	{
		return transform_error_impl(std::forward<F>(f), std::move(unex_));
	}

	template <class T2, class E2>
		requires std::is_void_v<T2>
	[[nodiscard]] friend constexpr bool operator==(const expected &x, const expected<T2, E2> &y)
	{
		if (x.has_value() != y.has_value())
			return false;
		return x.has_value() || bool(x.error() == y.error());
	}
	template <class E2>
	[[nodiscard]] friend constexpr bool operator==(const expected &x, const unexpected<E2> &e)
	{
		return !x.has_value() && bool(x.error() == e.error());
	}

private:
	template <class Fn>
	constexpr explicit expected(detail::expected_invoke_error_t, Fn &&fn)
		: base(detail::expected_invoke_error_t{}, std::forward<Fn>(fn))
	{
	}

	template <class G> constexpr void assign_unex(G &&g)
	{
		if (!has_val_) {
			unex_ = std::forward<G>(g);
		} else {
			std::construct_at(std::addressof(unex_), std::forward<G>(g));
			has_val_ = false;
		}
	}

	template <class F, class G> constexpr auto and_then_impl(F &&f, G &&g) const
	{
		using U = std::remove_cvref_t<std::invoke_result_t<F>>;
		static_assert(detail::is_expected<U>, "and_then: F must return an expected");
		static_assert(std::is_same_v<typename U::error_type, E>,
			      "and_then: F must return an expected with the same error type");
		if (has_val_)
			return std::invoke(std::forward<F>(f));
		return U(unexpect, std::forward<G>(g));
	}
	template <class F, class G> constexpr auto or_else_impl(F &&f, G &&g) const
	{
		using U = std::remove_cvref_t<std::invoke_result_t<F, G>>;
		static_assert(detail::is_expected<U>, "or_else: F must return an expected");
		static_assert(std::is_void_v<typename U::value_type>,
			      "or_else: F must return an expected with the same value type");
		if (has_val_)
			return U();
		return std::invoke(std::forward<F>(f), std::forward<G>(g));
	}
	template <class F, class G> constexpr auto transform_impl(F &&f, G &&g) const
	{
		using U = std::remove_cv_t<std::invoke_result_t<F>>;
		using R = expected<U, E>;
		if (!has_val_)
			return R(unexpect, std::forward<G>(g));
		if constexpr (std::is_void_v<U>) {
			std::invoke(std::forward<F>(f));
			return R();
		} else {
			return R(detail::expected_invoke_value_t{},
				 [&]() -> decltype(auto) { return std::invoke(std::forward<F>(f)); });
		}
	}
	template <class F, class G> constexpr auto transform_error_impl(F &&f, G &&g) const
	{
		using H = std::remove_cv_t<std::invoke_result_t<F, G>>;
		using R = expected<T, H>;
		if (has_val_)
			return R();
		return R(detail::expected_invoke_error_t{}, [&]() -> decltype(auto) {
			return std::invoke(std::forward<F>(f), std::forward<G>(g));
		});
	}
};

} // namespace shmq
