// SPDX-License-Identifier: MIT
// Number and size parsing shared by shmqctl, shmq-demo and shmq-bench.
#pragma once

#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shmq::cli {

// A whole decimal number, nothing before or after it.
[[nodiscard]] inline std::optional<uint64_t> parse_u64(std::string_view s)
{
	uint64_t v = 0;
	auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
	if (s.empty() || ec != std::errc() || p != s.data() + s.size())
		return std::nullopt;
	return v;
}

// "4096", "64K", "1M", "2G" (also "64KiB", "64KB", "1m"); nullopt on
// anything else or on overflow.
[[nodiscard]] inline std::optional<uint64_t> parse_size(std::string_view s)
{
	size_t digits = 0;
	while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9')
		++digits;
	auto n = parse_u64(s.substr(0, digits));
	if (!n)
		return std::nullopt;
	std::string suf(s.substr(digits));
	for (char &c : suf)
		c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
	unsigned shift;
	if (suf.empty() || suf == "B")
		shift = 0;
	else if (suf == "K" || suf == "KB" || suf == "KIB")
		shift = 10;
	else if (suf == "M" || suf == "MB" || suf == "MIB")
		shift = 20;
	else if (suf == "G" || suf == "GB" || suf == "GIB")
		shift = 30;
	else
		return std::nullopt;
	if (shift && *n > (UINT64_MAX >> shift))
		return std::nullopt;
	return *n << shift;
}

} // namespace shmq::cli
