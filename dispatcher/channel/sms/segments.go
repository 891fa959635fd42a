// Package sms is the SMS channel's providers: a Twilio-compatible adapter and a generic
// REST aggregator adapter configured by the ChannelPolicy, with GSM-7/UCS-2 segment
// counting (cost = segments x price).
package sms

import "unicode/utf16"

// gsm7 is the GSM 03.38 default alphabet; gsm7Ext the characters that take an escape
// septet (two septets each).
const (
	gsm7    = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Ext = "^{}\\[~]|€\f"
)

var basic, ext = set(gsm7), set(gsm7Ext)

func set(s string) map[rune]bool {
	m := map[rune]bool{}
	for _, r := range s {
		m[r] = true
	}
	return m
}

// Encoding of a message.
type Encoding string

// Encodings.
const (
	GSM7 Encoding = "GSM-7"
	UCS2 Encoding = "UCS-2"
)

// Segments returns the encoding a text needs and how many SMS segments it takes: GSM-7
// (160 septets, 153 per part when concatenated) when every character is in the GSM
// alphabet, else UCS-2 (70 UTF-16 units, 67 per part). Azerbaijani ə, ş, ğ, ı and any
// Cyrillic letter need UCS-2.
func Segments(text string) (Encoding, int) {
	septets, gsm := 0, true
	for _, r := range text {
		switch {
		case basic[r]:
			septets++
		case ext[r]:
			septets += 2
		default:
			gsm = false
		}
	}
	if gsm {
		return GSM7, parts(septets, 160, 153)
	}
	units := len(utf16.Encode([]rune(text)))
	return UCS2, parts(units, 70, 67)
}

func parts(n, single, multi int) int {
	switch {
	case n == 0:
		return 1
	case n <= single:
		return 1
	default:
		return (n + multi - 1) / multi
	}
}
