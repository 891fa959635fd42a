// Package reward values the bonuses of grant steps from the player's data and the event
// that started the flow: free spins, a match on the triggering deposit, cashback on a
// period's net loss. The partition owner reserves the value from the campaign's budget
// and publishes the grant to REWARDS, where the casino's bonus engine (or the signed
// webhook bridge) takes it.
package reward

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
)

// Reasons a grant is not made.
const (
	ReasonNoTriggeringDeposit = "NoTriggeringDeposit"
	ReasonDepositBelowMinimum = "DepositBelowMinimum"
	ReasonNoNetLoss           = "NoNetLoss"
	ReasonCurrencyMismatch    = "CurrencyMismatch"
	ReasonNotValued           = "RewardNotValuedHere"
	ReasonInvalidReward       = "InvalidReward"
)

// Engine values rewards (flow.Rewarder).
type Engine struct{}

// deposit is the part of a deposit.completed payload a match reads.
type deposit struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// Value fills g.Value (and g.Basis, g.Expires) with what g.Reward is worth for p now,
// given the data of the event that started the flow; false with a reason when nothing
// is due.
func (Engine) Value(g *bus.RewardGrant, p *players.Player, event json.RawMessage, now time.Time) (bool, string) {
	r := &g.Reward
	if r.ExpiresAfter != nil {
		g.Expires = now.Add(r.ExpiresAfter.Duration).UTC()
	}
	parse := func(m string, currency string) (int64, bool) {
		v, err := money.Parse(m, currency)
		return v, err == nil
	}
	switch {
	case r.FreeSpins != nil:
		v, ok := parse(r.FreeSpins.SpinValue.Amount, r.FreeSpins.SpinValue.Currency)
		if !ok {
			return false, ReasonInvalidReward
		}
		g.Value = bus.MinorAmount{Minor: v * int64(r.FreeSpins.Count), Currency: r.FreeSpins.SpinValue.Currency}
		g.Basis = strconv.Itoa(int(r.FreeSpins.Count)) + " spins on " + r.FreeSpins.Game
		return true, ""
	case r.MatchDeposit != nil:
		m := r.MatchDeposit
		var d deposit
		if len(event) == 0 || json.Unmarshal(event, &d) != nil || d.Amount == "" {
			return false, ReasonNoTriggeringDeposit
		}
		if d.Currency != m.Cap.Currency {
			return false, ReasonCurrencyMismatch
		}
		amount, ok := parse(d.Amount, d.Currency)
		cap, ok2 := parse(m.Cap.Amount, m.Cap.Currency)
		if !ok || !ok2 {
			return false, ReasonInvalidReward
		}
		if m.MinDeposit != nil {
			if min, ok := parse(m.MinDeposit.Amount, m.MinDeposit.Currency); ok && amount < min {
				return false, ReasonDepositBelowMinimum
			}
		}
		g.Value = bus.MinorAmount{Minor: min(amount*int64(m.Percent)/100, cap), Currency: d.Currency}
		g.Basis = strconv.Itoa(int(m.Percent)) + "% of a deposit of " + money.Format(amount, d.Currency) + " " + d.Currency
		return true, ""
	case r.Cashback != nil:
		c := r.Cashback
		if p.Currency != c.Cap.Currency {
			return false, ReasonCurrencyMismatch
		}
		cap, ok := parse(c.Cap.Amount, c.Cap.Currency)
		if !ok {
			return false, ReasonInvalidReward
		}
		loss := p.NetLoss(c.Period, now)
		if loss <= 0 {
			return false, ReasonNoNetLoss
		}
		g.Value = bus.MinorAmount{Minor: min(loss*int64(c.Percent)/100, cap), Currency: c.Cap.Currency}
		g.Basis = strconv.Itoa(int(c.Percent)) + "% of last " + string(c.Period) + "'s net loss of " + money.Format(loss, c.Cap.Currency) + " " + c.Cap.Currency
		return true, ""
	case r.Coupon != nil:
		v, ok := parse(r.Coupon.Value.Amount, r.Coupon.Value.Currency)
		if !ok {
			return false, ReasonInvalidReward
		}
		g.Value = bus.MinorAmount{Minor: v, Currency: r.Coupon.Value.Currency}
		g.Basis = "a coupon of pool " + r.Coupon.Pool
		return true, ""
	}
	return false, ReasonNotValued
}
