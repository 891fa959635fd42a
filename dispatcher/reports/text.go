package reports

// labels are a report's words in its language (en, az, ru).
var labels = map[string]map[string]string{
	"en": {
		"brand": "Brand", "period": "Period", "generation": "Made from Report generation", "made": "Made",
		"channels": "Channels", "campaigns": "Campaigns", "experiments": "Experiments", "budget": "Budget burn",
		"channel": "Channel", "campaign": "Campaign", "sent": "Sent", "delivered": "Delivered", "opened": "Opened",
		"clicked": "Clicked", "bounced": "Bounced", "complaints": "Complaints", "unsubscribes": "Unsubscribes",
		"converted": "Converted", "leads": "Leads", "messageCost": "Message cost", "revenue": "Revenue", "cpa": "CPA",
		"cpl": "CPL", "roi": "ROI", "targeted": "Targeted", "grants": "Grants", "rewardCost": "Reward cost",
		"arm": "Arm", "players": "Players", "rate": "Conversion", "pValue": "p-value", "significant": "Significant",
		"yes": "yes", "no": "no", "budgetCap": "Budget", "spent": "Spent", "percent": "% spent", "currency": "Currency",
		"nothing": "Nothing counted in the period.", "sinceStart": "Since each campaign started.",
		"chartSent": "Sent and converted by channel", "subject": "Report",
	},
	"az": {
		"brand": "Brend", "period": "Dövr", "generation": "Hesabatın konfiqurasiya nəsli", "made": "Hazırlanıb",
		"channels": "Kanallar", "campaigns": "Kampaniyalar", "experiments": "Eksperimentlər", "budget": "Büdcə xərclənməsi",
		"channel": "Kanal", "campaign": "Kampaniya", "sent": "Göndərilib", "delivered": "Çatdırılıb", "opened": "Açılıb",
		"clicked": "Kliklənib", "bounced": "Qayıdıb", "complaints": "Şikayətlər", "unsubscribes": "Abunəlikdən çıxış",
		"converted": "Konversiya", "leads": "Lidlər", "messageCost": "Mesaj xərci", "revenue": "Gəlir", "cpa": "CPA",
		"cpl": "CPL", "roi": "ROI", "targeted": "Hədəf", "grants": "Bonuslar", "rewardCost": "Bonus xərci",
		"arm": "Qol", "players": "Oyunçular", "rate": "Konversiya faizi", "pValue": "p-dəyəri", "significant": "Əhəmiyyətli",
		"yes": "bəli", "no": "xeyr", "budgetCap": "Büdcə", "spent": "Xərclənib", "percent": "% xərclənib", "currency": "Valyuta",
		"nothing": "Dövrdə heç nə sayılmayıb.", "sinceStart": "Hər kampaniyanın başlanğıcından bəri.",
		"chartSent": "Kanallar üzrə göndərilmiş və konversiya", "subject": "Hesabat",
	},
	"ru": {
		"brand": "Бренд", "period": "Период", "generation": "Построен по поколению отчёта", "made": "Создан",
		"channels": "Каналы", "campaigns": "Кампании", "experiments": "Эксперименты", "budget": "Расход бюджета",
		"channel": "Канал", "campaign": "Кампания", "sent": "Отправлено", "delivered": "Доставлено", "opened": "Открыто",
		"clicked": "Клики", "bounced": "Отказы", "complaints": "Жалобы", "unsubscribes": "Отписки",
		"converted": "Конверсии", "leads": "Лиды", "messageCost": "Стоимость сообщений", "revenue": "Выручка", "cpa": "CPA",
		"cpl": "CPL", "roi": "ROI", "targeted": "Охват", "grants": "Бонусы", "rewardCost": "Стоимость бонусов",
		"arm": "Вариант", "players": "Игроки", "rate": "Конверсия", "pValue": "p-значение", "significant": "Значимо",
		"yes": "да", "no": "нет", "budgetCap": "Бюджет", "spent": "Потрачено", "percent": "% потрачено", "currency": "Валюта",
		"nothing": "За период ничего не учтено.", "sinceStart": "С начала каждой кампании.",
		"chartSent": "Отправлено и конверсии по каналам", "subject": "Отчёт",
	},
}

// t is the label in the language, English when it has none.
func t(lang, key string) string {
	if s, ok := labels[lang][key]; ok {
		return s
	}
	return labels["en"][key]
}
