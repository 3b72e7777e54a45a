// Makes the database ColdStart opens: a programme and a card, as after enrolment.
fun main(args: Array<String>) {
    val t = app.tessera.Tessera.open(args[0])
    t.setProgram(app.tessera.domain.Program("maison-dupont", "Maison Dupont", "#0a7d5a", app.tessera.domain.Symbology.EAN13))
    t.setCard(app.tessera.domain.MemberCard("400638133393", "Ada Lovelace", "2021-03-04", "Gold"))
    t.shutdown()
}
