//go:build !windows

package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The warm re-run step by step against the -compare build, and each
// command's peak RSS against the floor every command pays: `apimdev version`
// (the binary's pages and the Go runtime, no client, no API call).

// rssFloorKB is the peak RSS of `apimdev version` per round (arm A's binary).
var rssFloorKB = map[int]int64{}

// rssFloor measures `apimdev version`'s peak RSS three times in round rd.
func (b *bench) rssFloor(ctx context.Context, rd *round, env []string) {
	for range 3 {
		res, err := run(ctx, time.Minute, env, b.r.apimdev, "version")
		if err != nil {
			return
		}
		rssFloorKB[rd.N] = max(rssFloorKB[rd.N], res.MaxRSSKB)
	}
}

// stepMedians is the median duration of each named step over runs, in the
// order the steps first appear.
func stepMedians(runs []stage) (names []string, med map[string]time.Duration) {
	by := map[string][]time.Duration{}
	for _, s := range runs {
		if _, ok := by[s.Name]; !ok {
			names = append(names, s.Name)
		}
		by[s.Name] = append(by[s.Name], s.Dur)
	}
	med = map[string]time.Duration{}
	for n, ds := range by {
		med[n] = median(ds)
	}
	return names, med
}

func msCell(d time.Duration, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.0f ms", ms(d))
}

// warmTable renders both tables; "" when the run had no warm re-runs.
func (b *bench) warmTable() string {
	var a, c []stage
	var aWarm, cWarm []time.Duration
	for _, r := range b.rounds {
		a, c = append(a, r.Up.WarmSteps...), append(c, r.Cmp.WarmSteps...)
		aWarm, cWarm = append(aWarm, r.Up.Warm...), append(cWarm, r.Cmp.Warm...)
	}
	if len(aWarm) == 0 {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	names, am := stepMedians(a)
	cnames, cm := stepMedians(c)
	for _, n := range cnames {
		if _, ok := am[n]; !ok {
			names = append(names, n)
		}
	}
	cmp := b.o.compare != "" && len(cWarm) > 0
	p("Warm re-run of `up` step by step (medians of every warm run; the rest of the whole is process start, opening the session and reading the cluster's record before the first step):")
	p("")
	if cmp {
		p("| step | this build | [%s] |", b.o.compareLabel)
		p("| --- | --- | --- |")
	} else {
		p("| step | this build |")
		p("| --- | --- |")
	}
	var aSum, cSum time.Duration
	for _, n := range names {
		ad, aok := am[n]
		cd, cok := cm[n]
		aSum, cSum = aSum+ad, cSum+cd
		if cmp {
			p("| %s | %s | %s |", n, msCell(ad, aok), msCell(cd, cok))
		} else {
			p("| %s | %s |", n, msCell(ad, aok))
		}
	}
	if cmp {
		p("| sum of the steps | %s | %s |", msCell(aSum, true), msCell(cSum, true))
		p("| whole command | %s | %s |", msCell(median(aWarm), true), msCell(median(cWarm), true))
	} else {
		p("| sum of the steps | %s |", msCell(aSum, true))
		p("| whole command | %s |", msCell(median(aWarm), true))
	}
	p("")

	var floor int64
	for _, kb := range rssFloorKB {
		floor = max(floor, kb)
	}
	if floor == 0 {
		return w.String()
	}
	peak := func(f func(*round) int64) int64 {
		var m int64
		for _, r := range b.rounds {
			m = max(m, f(r))
		}
		return m
	}
	rows := []struct {
		what string
		kb   int64
	}{
		{"`up` cold", peak(func(r *round) int64 { return r.Up.RSSKB })},
		{"`up` warm", peak(func(r *round) int64 { return r.Up.WarmRSSKB })},
		{"`status`", peak(func(r *round) int64 { return r.StatusRSSKB })},
		{"`promote`", peak(func(r *round) int64 {
			if r.Promote == nil {
				return 0
			}
			return r.Promote.RSSKB
		})},
		{"forward after its loads", peak(func(r *round) int64 { return r.FwdRSSKB })},
	}
	p("Peak RSS against the floor every command pays, `apimdev version` (%s: the binary's mapped pages and the Go runtime):", mib(floor))
	p("")
	if benchRSSMaxKB.Load() > 0 {
		p("(Linux counts the starting process's resident set into a command's peak; the bench lowers its own peak to its current size before each command, which was at most %s: a figure at or under that is the bench's, not the command's.)",
			mib(benchRSSMaxKB.Load()))
		p("")
	}
	p("| command | peak RSS (highest of the rounds) | above `version` |")
	p("| --- | --- | --- |")
	for _, r := range rows {
		if r.kb == 0 {
			continue
		}
		p("| %s | %s | %s |", r.what, mib(r.kb), mib(r.kb-floor))
	}
	p("")
	return w.String()
}
