package sms_test

import (
	"strings"
	"testing"

	"github.com/croupier-crm/croupier/dispatcher/channel/sms"
)

func TestSegments(t *testing.T) {
	for _, c := range []struct {
		name string
		text string
		enc  sms.Encoding
		n    int
	}{
		{"empty", "", sms.GSM7, 1},
		{"160 GSM-7", strings.Repeat("a", 160), sms.GSM7, 1},
		{"161 GSM-7", strings.Repeat("a", 161), sms.GSM7, 2},
		{"306 GSM-7 is two parts of 153", strings.Repeat("a", 306), sms.GSM7, 2},
		{"307 GSM-7", strings.Repeat("a", 307), sms.GSM7, 3},
		{"the euro sign takes two septets", strings.Repeat("a", 159) + "€", sms.GSM7, 2},
		{"ö and ü are GSM", "Bonus: 20 pulsuz fırlanma", sms.UCS2, 1}, // ı is not
		{"Azerbaijani ə", "BakuCasino: 50.00 AZN depozit qəbul edildi.", sms.UCS2, 1},
		{"70 UCS-2", strings.Repeat("ə", 70), sms.UCS2, 1},
		{"71 UCS-2", strings.Repeat("ə", 71), sms.UCS2, 2},
		{"134 UCS-2 is two parts of 67", strings.Repeat("ş", 134), sms.UCS2, 2},
		{"Russian", "Ваш депозит 1 500,00 ₽ зачислен. Удачи!", sms.UCS2, 1},
		{"an emoji is two UTF-16 units", strings.Repeat("я", 69) + "🎰", sms.UCS2, 2},
		{"plain Latin with GSM accents", "Çox sağ ol", sms.UCS2, 1}, // ğ is not GSM
		{"GSM only", "Ä Ö Ñ Ü é è £ $ @ _", sms.GSM7, 1},
	} {
		enc, n := sms.Segments(c.text)
		if enc != c.enc || n != c.n {
			t.Errorf("%s: %s x%d, want %s x%d", c.name, enc, n, c.enc, c.n)
		}
	}
}
