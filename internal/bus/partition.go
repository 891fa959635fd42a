package bus

import "hash/fnv"

// DefaultPartitions is the partition count of a new EVENTS stream. Each partition is one
// filtered pull consumer on EVENTS; on a 2-core machine 64 of them cost a third of the
// intake rate against 16 (docs/decisions.md, docs/benchmarks.md). It caps the replicas
// that share the work; set --partitions higher for a larger cluster.
const DefaultPartitions = 16

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
