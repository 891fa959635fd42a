package bus

import "hash/fnv"

// DefaultPartitions is the partition count of a new EVENTS stream.
const DefaultPartitions = 64

// Partition returns the partition of a player: FNV-1a (32 bit) of the player id modulo
// partitions. It matches nats-server's partition(P, n) subject-transform function, which
// hashes the bytes of the named token the same way, so the stored event subject and every
// later per-player subject and key carry the same number.
func Partition(player string, partitions int) int {
	if partitions <= 0 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(player))
	return int(h.Sum32() % uint32(partitions))
}
