package players

// PutForTest places a player in the partition as it is, for tests and benchmarks that need
// exact field values (RFM scores, sums) without replaying events.
func (pt *Partition) PutForTest(p Player) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.brand(p.Brand).put(&entry{Player: p})
}
