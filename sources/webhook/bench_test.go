package webhook

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkHubSpotIntake verifies and parses one signed 10-event HubSpot
// delivery, the unit of work behind the intake target (5,000 signed
// deliveries/s on 2 cores).
func BenchmarkHubSpotIntake(b *testing.B) {
	var events []string
	for i := range 10 {
		events = append(events, fmt.Sprintf(`{"eventId":%d,"subscriptionId":25,"portalId":33,"appId":1160452,"occurredAt":%d,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":%d,"changeSource":"CRM_UI","propertyName":"firstname","propertyValue":"Ada %d"}`,
			3816279340+i, 1763819940000+int64(i), 1246965+i, i))
	}
	body := "[" + strings.Join(events, ",") + "]"
	r := hubSpotV3Request(testSecrets[1], "POST", hubSpotURL, body, testNow)
	v := must(NewHubSpotVerifier(HubSpotConfig{Secrets: testSecrets}))
	p := must(NewHubSpotParser(HubSpotParserConfig{}))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(r, testNow); err != nil {
			b.Fatal(err)
		}
		c, err := p.Parse(r)
		if err != nil || len(c) != 10 {
			b.Fatal(len(c), err)
		}
	}
}
