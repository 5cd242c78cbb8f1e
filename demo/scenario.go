package demo

import (
	"math"
	"time"
)

// Scenario shapes the world around an incident. Both the simulated world and
// the live one ask it, at every moment, how the world should behave.
type Scenario interface {
	Name() string
	Describe() string
	// At returns the conditions at offset d since the incident began;
	// d < 0 is before the incident.
	At(d time.Duration) Conditions
}

// Conditions is what a scenario dictates at one moment.
type Conditions struct {
	Load         float64 // multiplier on the normal (daily-shaped) traffic
	BookingShare float64 // fraction of requests that are POST (bookings)
	HotShare     float64 // fraction of bookings that hit the one hot event (row-lock contention)
	Crash        bool    // the database crashes and recovers in this window
	Bad          *BadDeploy
}

// BadDeploy is a faulty version of tickets-server running in one AZ.
type BadDeploy struct {
	AZ, Version string
	ErrorRate   float64
	Message     string
}

// Tuning carries the knobs from Config that scenarios use.
type Tuning struct {
	SurgeFactor float64
	CrashAfter  time.Duration
}

// scenarios is the registry; built in code, not by init().
var scenarios = map[string]func(Tuning) Scenario{
	"peak-sale":  func(t Tuning) Scenario { return peakSale{t} },
	"bad-deploy": func(t Tuning) Scenario { return badDeploy{t} },
}

var normal = Conditions{Load: 1, BookingShare: 0.3, HotShare: 0.05}

// peakSale: traffic surges for a sale, tickets-server scales out, every task
// opens its own pool and the database runs out of connection slots.
type peakSale struct{ t Tuning }

func (peakSale) Name() string { return "peak-sale" }
func (peakSale) Describe() string {
	return "a peak sale: traffic surges, tickets-server scales out and exhausts the database's connections"
}

// crashWindow is how long the simulated database stays in crash recovery.
const crashWindow = 8 * time.Second

func (p peakSale) At(d time.Duration) Conditions {
	if d < 0 {
		return normal
	}
	c := normal
	// Ramp to the full surge over two minutes (quicker when the crash comes
	// early, so that the surge is at its height before it), then stay there
	// with a wobble.
	rampFor := min(2*time.Minute, p.t.CrashAfter/3)
	ramp := math.Min(1, d.Seconds()/max(rampFor.Seconds(), 1))
	wobble := 1 + 0.08*math.Sin(d.Seconds()/37)
	c.Load = 1 + (p.t.SurgeFactor-1)*ramp*wobble
	c.BookingShare = 0.85
	c.HotShare = 0.9
	c.Crash = d >= p.t.CrashAfter && d < p.t.CrashAfter+crashWindow
	return c
}

// badDeploy: a new version of tickets-server rolls out to one AZ and fails a
// share of bookings, with no database trouble at all.
type badDeploy struct{ t Tuning }

func (badDeploy) Name() string { return "bad-deploy" }
func (badDeploy) Describe() string {
	return "a bad deploy: tickets-server 1.5.0 in us-east-1b fails bookings"
}

func (b badDeploy) At(d time.Duration) Conditions {
	if d < 0 {
		return normal
	}
	c := normal
	c.Load = 1.5
	c.Bad = &BadDeploy{
		AZ: "us-east-1b", Version: "1.5.0", ErrorRate: 0.45,
		Message: "TypeError: Cannot read properties of undefined (reading 'seatMap')",
	}
	return c
}

// offered is the traffic multiplier at t: the daily shape, plus the
// scenario's extra load on top (a sale brings its crowd at any hour).
func offered(t time.Time, c Conditions) float64 {
	return dailyShape(t) + c.Load - 1
}

// dailyShape is the normal traffic multiplier by time of day (UTC): quiet at
// night, busy in the evening.
func dailyShape(t time.Time) float64 {
	h := float64(t.UTC().Hour()) + float64(t.UTC().Minute())/60
	return 1 + 0.4*math.Sin((h-13)/24*2*math.Pi)
}
